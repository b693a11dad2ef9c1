"""Image-tower (face) redaction: it forgets faces on photos it never saw, spares the others, is deterministic and
moves only what it should; the face target reaches it from every entry point."""

import json
import shutil

import pytest
import torch

from idia.defense import base
from idia.defense.redact_image import TARGETS, FaceRedactor
from idia.defense.verify import VerifyConfig
from idia.errors import InputError


def test_the_image_authors_preset_keeps_the_mean_face_and_the_default_nulls_the_name():
    r = FaceRedactor.from_preset("authors", seed=3)
    assert (r.target, r.trainable, r.lr, r.steps, r.redaction_weight, r.drift_weight, r.drift_norm,
            r.freeze_layernorm, r.lr_gamma, r.seed, r.name_weight) == ("mean", "tower", 1e-4, 100, 0.8, 0.005, "norm",
                                                                      True, 0.1, 3, 0.0)
    assert [round(m * r.steps) for m in r.lr_milestones] == [25, 50]
    default = FaceRedactor()
    assert (default.target, default.trainable, default.name_weight) == ("name-null", "projection", 0.05)
    assert default.target in TARGETS
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


@pytest.mark.slow
def test_image_redaction_forgets_faces_on_photos_it_never_saw(image_verification, redact_names):
    v, record, out = image_verification
    s = record["summary"]
    print("\nimage redaction", {g: (s[g]["identified_before"], s[g]["identified_after"], s[g]["n"])
                                for g in ("redacted", "neighbours", "collateral")}, s["utility"])
    # Default settings (the name-null target on the image projection, the name-keeping term at 0.05: chosen on
    # world seeds by bench/bench_face_redaction.py, idia.defense.tuning). The goal (issue 21): at most 20% of the
    # redacted people identified on unseen photos, other members lose at most 10 points, utility at most 5.
    saved = json.loads((out / "defended-model" / "redaction.json").read_text(encoding="utf-8"))
    assert v.record["defense"]["settings"]["target"] == saved["hyperparameters"]["target"] == "name-null"
    assert "name direction" in saved["target"] and saved["trained_tensors"] == ["visual.proj"]
    assert s["redacted"]["identified_before"] >= 8
    assert s["redacted"]["identified_after"] <= 0.2 * s["redacted"]["n"]
    others_n = s["neighbours"]["n"] + s["collateral"]["n"]
    lost = (s["neighbours"]["identified_before"] + s["collateral"]["identified_before"]
            - s["neighbours"]["identified_after"] - s["collateral"]["identified_after"])
    assert lost / others_n <= 0.10
    assert s["utility"]["top1_before"] - s["utility"]["top1_after"] <= 0.05
    assert record["defense"]["tuning"]["defaults"] == {"name_weight": saved["hyperparameters"]["name_weight"]}
    assert saved["tuning"]["chosen_on_world_seeds"] == record["defense"]["tuning"]["chosen_on_world_seeds"]
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
    retain = {folder.name: sorted(folder.glob("*.png"))[:3] for folder in people[1:6]}  # by person: the name term
    a, b = (FaceRedactor(steps=5, progress=False).fit(world_model, photos, retain) for _ in range(2))
    assert a.losses_ == b.losses_ and a.checkpoint_sha256_after_ == b.checkpoint_sha256_after_
    assert a.checkpoint_sha256_after_ != world_model.checkpoint_sha256 and a.trained_tensors_ == ["visual.proj"]
    before = dict(world_model.model.named_parameters())
    moved = {n for n, p in a.student_.named_parameters() if not torch.equal(p, before[n])}
    assert moved == {"visual.proj"}


@pytest.mark.slow
def test_the_image_redact_command_records_and_says_how_its_defaults_were_chosen(tmp_path, world_model_dir,
                                                                                world_photos, redact_names):
    from click.testing import CliRunner

    from idia.compliance.cli import main
    from idia.defense.tuning import face_tuning
    people = tmp_path / "people"  # the redacted people and five others: enough to train two steps on
    people.mkdir()
    redacted = [world_photos / "people" / n for n in redact_names.read_text().split("\n") if n]
    keep = [f for f in sorted((world_photos / "people").iterdir()) if f not in redacted][:5]
    for folder in redacted + keep:
        shutil.copytree(folder, people / folder.name)
    out = tmp_path / "defended"
    result = CliRunner().invoke(main, ["defend", "redact", "--model", "world", "--names", str(redact_names),
                                       "--tower", "image", "--people", str(people), "--steps", "2", "--out",
                                       str(out)])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "redaction.json").read_text(encoding="utf-8"))
    assert record["hyperparameters"]["name_weight"] == 0.05 and record["tuning"] == face_tuning()
    assert f"note: {face_tuning()['recommendation']}" in " ".join(result.output.split())
