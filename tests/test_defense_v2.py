"""Defenses, second generation: image-tower redaction on unseen photos, held-out phrasings and name variants, the
relearning probe, the authors' preset, and the registry every defense is found through."""

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_defense import pick_members

from idia.attack.inputs.people import Photo
from idia.attack.inputs.prompts import PAPER_TEMPLATES, read_prompts
from idia.attack.settings import AttackSettings
from idia.defense import base
from idia.defense.probes import heldout_templates_path, name_variant, split_person, variant_distractors, variant_view
from idia.defense.redact import PRESETS, CaptionSampler, NameRedactor, bundled_captions
from idia.defense.redact_image import TARGETS, FaceRedactor
from idia.defense.relearn import clean_captions_without
from idia.defense.training import drift_penalty, layernorm_parameter_names
from idia.defense.verify import VerifyConfig, verify, write_verification
from idia.errors import InputError

# --- fast: pure rules --------------------------------------------------------------------------------------------

def _photos(n):
    return [Photo(path=f"/x/{i:03d}.png", sha256=f"{i:064x}") for i in range(n)]


@given(st.integers(0, 40), st.integers(0, 2**32 - 1), st.randoms())
@settings(max_examples=60, deadline=None)
def test_a_photo_split_partitions_and_ignores_listing_order(n, seed, rnd):
    photos = _photos(n)
    unlearn, verify_ = split_person(photos, seed)
    shuffled = list(photos)
    rnd.shuffle(shuffled)
    assert (unlearn, verify_) == split_person(shuffled, seed)  # deterministic, whatever order files are listed in
    assert sorted(p.sha256 for p in unlearn + verify_) == sorted(p.sha256 for p in photos)  # a partition
    assert len(unlearn) == n // 2 and not {p.sha256 for p in unlearn} & {p.sha256 for p in verify_}


def _all_frames(captions):
    """The slow twin of CaptionSampler._frame: every frame it can ever draw (a template, or a caption with one of
    its first six words replaced by the name)."""
    frames = set(PAPER_TEMPLATES)
    for c in captions:
        words = c.split(" ")
        for i in range(min(len(words), 6)):
            w = list(words)
            w[i] = "{0}"
            frames.add(" ".join(x.replace("{", "(").replace("}", ")") if x != "{0}" else x for x in w))
    return frames


def test_heldout_phrasings_are_none_the_redaction_trains_on():
    heldout = read_prompts(heldout_templates_path())
    assert len(heldout) >= 10
    assert not set(heldout) & _all_frames(bundled_captions())


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=20, deadline=None)
def test_the_sampler_only_draws_frames_the_slow_twin_lists(seed):
    captions = bundled_captions()
    sampler = CaptionSampler(["Kojo Huang"], "a person", captions, [], [], PAPER_TEMPLATES, 0.5, 0.5, 0.3)
    rng = np.random.default_rng(seed)
    frames = _all_frames(captions)
    drawn = {sampler._frame(rng) for _ in range(50)}
    assert drawn <= frames
    assert not drawn & set(read_prompts(heldout_templates_path()))


@pytest.mark.parametrize("variant, expected", [("first", "Kojo"), ("last", "Huang"), ("initials", "K. Huang")])
def test_name_variants(variant, expected):
    assert name_variant("Kojo Huang", variant) == expected
    assert name_variant("Anna Maria Lopez", "initials") == "A. M. Lopez"


def test_a_name_variant_view_keeps_one_of_a_shared_short_form_preferring_the_redacted(tmp_path):
    photos = {"Kojo Huang": _real_photos(tmp_path, "a"), "Kojo Lau": _real_photos(tmp_path, "b"),
              "Ann Ray": _real_photos(tmp_path, "c")}
    view = variant_view(tmp_path / "v", "first", photos, {}, {"Kojo Huang": True, "Kojo Lau": True,
                                                               "Ann Ray": False}, 50, 0, prefer=["Kojo Lau"])
    assert view.dropped == ["Kojo Huang"]
    assert sorted(p.name for p in view.people.iterdir()) == ["Ann", "Kojo"]
    assert json.loads(view.labels.read_text()) == {"Kojo": True, "Ann": False}
    cands = view.candidates.read_text().split("\n")[:-1]
    assert cands[:2] == ["Kojo", "Ann"] and len(cands) == len(set(cands)) == 50
    assert all(" " not in c for c in cands)  # every candidate has the variant's form


def _real_photos(tmp_path, tag):
    from PIL import Image
    folder = tmp_path / "src" / tag
    folder.mkdir(parents=True)
    out = []
    for i in range(2):
        path = folder / f"{i}.png"
        Image.new("RGB", (8, 8), (i * 50, 0, 0)).save(path)
        out.append(Photo(path, f"{tag}{i}"))
    return out


def test_initials_distractors_have_the_initials_form():
    got = variant_distractors("initials", 30, {"K. Huang"}, 1)
    assert len(got) == 30 and "K. Huang" not in got and all(c[1:3] == ". " for c in got)


@given(st.lists(st.lists(st.floats(-3, 3), min_size=1, max_size=6), min_size=1, max_size=4))
@settings(max_examples=40, deadline=None)
def test_the_authors_drift_is_the_sum_of_unsquared_norms(rows):
    params = [torch.tensor(r, dtype=torch.float64) for r in rows]
    anchors = [torch.zeros_like(p) for p in params]
    slow = sum(sum(x * x for x in r) ** 0.5 for r in rows)
    assert float(drift_penalty(params, anchors, "norm")) == pytest.approx(slow, rel=1e-9, abs=1e-12)
    assert float(drift_penalty(params, anchors, "squared")) == pytest.approx(sum(x * x for r in rows for x in r),
                                                                            rel=1e-9, abs=1e-12)


def test_relearning_captions_name_nobody_redacted():
    names = ["Kojo Huang"]
    caps = clean_captions_without(names, ["a photo of Kojo Huang", "kojo huang smiling", "a red circle"])
    assert caps == ["a red circle"]


def test_the_registry_derives_choices_and_keys():
    assert base.families() == ("redact", "perturb")
    assert base.towers() == ("text", "image", "both") and set(base.variants("perturb")) == {"noise", "project"}
    assert [d.variant for d in base.resolve("redact", "both")] == ["text", "image"]
    from idia.compliance.config import defense_keys
    assert {"tower", "preset", "strength", "side"} <= set(defense_keys())
    with pytest.raises(InputError, match="--tower must be one of text, image, both"):
        base.resolve("redact", "audio")

    class Blur:  # a defense in one place: it shows up in the choices and the keys
        family, variant, summary, needs_photos = "perturb", "blur", "blur the photos", False
        options = {"radius": base.Option("float", 1.0)}

    with base.DEFENSES.registered(Blur):
        assert "blur" in base.variants("perturb") and base.all_options()["radius"].default == 1.0
        assert base.resolve("perturb", "blur") == [Blur] and base.summaries("perturb")["blur"] == "blur the photos"
        assert "radius" in defense_keys()
    assert "blur" not in base.variants("perturb")


def test_the_authors_preset_has_the_published_settings():
    r = NameRedactor.from_preset("authors", seed=3)
    assert (r.neutral, r.lr, r.steps, r.redaction_weight, r.drift_norm, r.freeze_layernorm, r.seed) == \
        ("human", 1e-4, 400, 0.6, "norm", True, 3)
    assert [round(m * r.steps) for m in r.lr_milestones] == [200, 300]
    assert PRESETS["authors"]["drift_weight"] == 0.01
    with pytest.raises(InputError, match="--preset"):
        NameRedactor.from_preset("ours")


def test_the_image_authors_preset_keeps_the_mean_face_and_the_default_nulls_the_name():
    r = FaceRedactor.from_preset("authors", seed=3)
    assert (r.target, r.trainable, r.lr, r.steps, r.redaction_weight, r.drift_weight, r.drift_norm,
            r.freeze_layernorm, r.lr_gamma, r.seed) == ("mean", "tower", 1e-4, 100, 0.8, 0.005, "norm", True, 0.1, 3)
    assert [round(m * r.steps) for m in r.lr_milestones] == [25, 50]
    default = FaceRedactor()
    assert (default.target, default.trainable) == ("name-null", "projection") and default.target in TARGETS
    assert FaceRedactor.from_preset(None, target="mean").get_params()["target"] == "mean"
    for bad, match in (({"target": "blur"}, "target must be one of name-null, mean"),
                       ({"trainable": "text"}, "trainable must be one of"), ({"name_overshoot": -1}, "overshoot")):
        with pytest.raises(InputError, match=match):
            FaceRedactor(**bad).fit(None, {}, [])
    from idia.compliance.config import defense_checks, defense_keys
    assert "face_target" in defense_keys() and defense_checks()["face_target"]("blur")


def test_face_target_reaches_the_face_redactor(monkeypatch, tmp_path):
    seen = {}

    def fit(self, loaded, photos, retain):
        seen.update(self.get_params())
        raise InputError("fitted")

    monkeypatch.setattr(FaceRedactor, "fit", fit)
    context = base.DefenseContext(loaded=None, encoder=type("Encoder", (), {"precision": "fp32"})(), names=["A B"],
                                  seed=0, unlearn_photos={"A B": [tmp_path / "a.png"]})
    for face_target, preset, expected in (("mean", None, "mean"), (None, None, "name-null"),
                                          (None, "authors", "mean"), ("name-null", "authors", "name-null")):
        cfg = VerifyConfig(attack=None, names=tmp_path, tower="image", face_target=face_target, preset=preset)
        with pytest.raises(InputError, match="fitted"):
            cfg.chain()[0]().apply(context, cfg.options())
        assert seen["target"] == expected


# --- slow: on the world ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def redact_names(paper_run, world_model_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("names2") / "redact.txt"
    path.write_text("\n".join(pick_members(paper_run, world_model_dir)) + "\n", encoding="utf-8")
    return path


def _attack(world_model_dir, world_photos):
    return AttackSettings(model=str(world_model_dir), people=world_photos / "people",
                        labels=world_photos / "labels.json", progress=False, command="pytest")


@pytest.fixture(scope="module")
def image_verification(world_model, world_model_dir, world_photos, redact_names, tmp_path_factory):
    out = tmp_path_factory.mktemp("verify-image")
    cfg = VerifyConfig(attack=_attack(world_model_dir, world_photos), names=redact_names, tower="image",
                       utility=world_photos / "shapes", probes=False, relearn_steps=(20,), out=out)
    v = verify(cfg, loaded=world_model)
    path = write_verification(v, out)
    return v, json.loads(path.read_text(encoding="utf-8")), out


@pytest.mark.slow
def test_image_redaction_forgets_faces_on_photos_it_never_saw(image_verification, redact_names):
    v, record, out = image_verification
    s = record["summary"]
    print("\nimage redaction", {g: (s[g]["identified_before"], s[g]["identified_after"], s[g]["n"])
                                for g in ("redacted", "neighbours", "collateral")}, s["utility"])
    # Measured on the world (unseen photos), default settings (the name-null target on the image projection):
    # redacted 10 -> 1 of 10, other members 86 -> 79 of 90 (-7.8 points), shapes top-1 .653 -> .597. The issue's
    # target: at most 1 redacted person still identified, other members lose at most 10 points; utility within 10.
    saved = json.loads((out / "defended-model" / "redaction.json").read_text(encoding="utf-8"))
    assert v.record["defense"]["settings"]["target"] == saved["hyperparameters"]["target"] == "name-null"
    assert "name direction" in saved["target"] and saved["trained_tensors"] == ["visual.proj"]
    assert s["redacted"]["identified_before"] >= 8
    assert s["redacted"]["identified_after"] <= 1
    others_n = s["neighbours"]["n"] + s["collateral"]["n"]
    lost = (s["neighbours"]["identified_before"] + s["collateral"]["identified_before"]
            - s["neighbours"]["identified_after"] - s["collateral"]["identified_after"])
    assert lost / others_n <= 0.10
    assert s["utility"]["top1_before"] - s["utility"]["top1_after"] <= 0.10
    # The photos it trained on and the photos it was attacked with are apart, and the record says which.
    photos = record["photos"]
    names = redact_names.read_text().split()
    for person, unlearnt in photos["unlearn"].items():
        assert not {p["sha256"] for p in unlearnt} & {p["sha256"] for p in photos["verify"][person]}
    attacked = {im["sha256"] for im in v.after.result.manifest["inputs"]["images"]}
    assert attacked == {p["sha256"] for ps in photos["verify"].values() for p in ps}
    trained = {str(p) for ps in v.defense.photos_.values() for p in ps}
    assert trained == {p["file"] for n, ps in photos["unlearn"].items() if n in " ".join(names) for p in ps}
    # A new image tower: its identity is its own, so no embedding cached for the source is reused.
    assert v.applied.loaded.image_identity != v.before.result.model.get("checkpoint_sha256")


def test_image_redaction_is_deterministic_and_moves_only_the_projection(world_model, world_photos):
    people = sorted((world_photos / "people").iterdir())
    photos = {people[0].name: sorted(people[0].glob("*.png"))[:3]}
    retain = [p for folder in people[1:6] for p in sorted(folder.glob("*.png"))[:3]]
    a, b = (FaceRedactor(steps=5, progress=False).fit(world_model, photos, retain) for _ in range(2))
    assert a.losses_ == b.losses_ and a.checkpoint_sha256_after_ == b.checkpoint_sha256_after_
    assert a.checkpoint_sha256_after_ != world_model.checkpoint_sha256 and a.trained_tensors_ == ["visual.proj"]
    before = dict(world_model.model.named_parameters())
    moved = {n for n, p in a.student_.named_parameters() if not torch.equal(p, before[n])}
    assert moved == {"visual.proj"}


@pytest.mark.slow
def test_the_relearning_probe_reports_who_comes_back(image_verification):
    _, record, _ = image_verification
    rel = record["relearning"]
    assert rel["towers"] == ["image"] and [r["steps"] for r in rel["rows"]] == [20]
    row = rel["rows"][0]
    after = {r["name"]: r["after"]["member"] for r in record["redacted"]}
    assert set(row["came_back"]) <= {n for n, m in after.items() if not m}
    assert row["redacted_identified"] >= len(row["came_back"])
    assert row["checkpoint_sha256"] != record["defense"]["record"]["checkpoint_sha256_after"]


@pytest.mark.slow
def test_text_redaction_holds_on_heldout_phrasings_and_shows_name_variants(world_model, world_model_dir,
                                                                         world_photos, redact_names, tmp_path):
    cfg = VerifyConfig(attack=_attack(world_model_dir, world_photos), names=redact_names, probes=True,
                       variants=("first", "initials"), steps=120)
    record = verify(cfg, loaded=world_model).record
    rows = {r["probe"]: r for r in record["probes"]["rows"]}
    print("\n", {k: (r["redacted"]["identified_before"], r["redacted"]["identified_after"], r["redacted"]["n"])
                 for k, r in rows.items()})
    main = rows["the attack's templates (21)"]
    assert main["redacted"] == record["summary"]["redacted"]
    held = rows["held-out phrasings"]
    assert held["redacted"]["identified_before"] >= 5 and held["redacted"]["identified_after"] <= 1
    assert held["others"]["identified_before"] - held["others"]["identified_after"] <= 0.1 * held["others"]["n"]
    for variant in ("first", "initials"):
        r = rows[f"name variant: {variant}"]
        assert r["redacted"]["n"] + sum(n in r["dropped_as_ambiguous"] for n in redact_names.read_text().split("\n")) \
            == 10
        assert r["redacted"]["identified_after"] <= r["redacted"]["identified_before"]


@pytest.mark.slow
def test_the_authors_preset_redacts_and_keeps_layernorms(world_model, world_model_dir, world_photos, redact_names):
    cfg = VerifyConfig(attack=_attack(world_model_dir, world_photos), names=redact_names, preset="authors",
                       probes=False)
    v = verify(cfg, loaded=world_model)
    s = v.record["summary"]
    print("\nauthors preset", {g: (s[g]["identified_before"], s[g]["identified_after"], s[g]["n"])
                               for g in ("redacted", "neighbours", "collateral")})
    assert v.record["defense"]["settings"]["neutral"] == "human"
    assert s["redacted"]["identified_after"] <= 2
    frozen = set(layernorm_parameter_names(world_model.model))
    student = dict(v.defense.student_.named_parameters())
    for name, p in world_model.model.named_parameters():
        if name in frozen and not name.startswith("visual."):
            assert torch.equal(p, student[name]), name
