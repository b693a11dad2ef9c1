"""The verification's probes: each person's photos split into unlearn and verify halves, held-out phrasings the
redaction never trains on, name variants, and the relearning probe."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from idia.attack.inputs.people import Photo
from idia.attack.inputs.prompts import PAPER_TEMPLATES, read_prompts
from idia.defense.probes import heldout_templates_path, name_variant, split_person, variant_distractors, variant_view
from idia.defense.redact import CaptionSampler, bundled_captions
from idia.defense.relearn import clean_captions_without

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


def test_relearning_captions_name_nobody_redacted():
    names = ["Kojo Huang"]
    caps = clean_captions_without(names, ["a photo of Kojo Huang", "kojo huang smiling", "a red circle"])
    assert caps == ["a red circle"]


# --- slow: on the world ------------------------------------------------------------------------------------------


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


def test_text_redaction_holds_on_heldout_phrasings_and_shows_name_variants(redaction, redacted_names):
    _, _, record = redaction
    rows = {r["probe"]: r for r in record["probes"]["rows"]}
    print("\n", {k: (r["redacted"]["identified_before"], r["redacted"]["identified_after"], r["redacted"]["n"])
                 for k, r in rows.items()})
    main = rows["the attack's templates (21)"]
    # The probe row is judged at the before boundary only; the summary also counts the recalibrated after.
    assert main["redacted"] == {k: v for k, v in record["summary"]["redacted"].items()
                                if k != "identified_after_recalibrated"}
    held = rows["held-out phrasings"]
    assert held["redacted"]["identified_before"] >= 5 and held["redacted"]["identified_after"] <= 1
    assert held["others"]["identified_before"] - held["others"]["identified_after"] <= 0.1 * held["others"]["n"]
    for variant in ("first", "initials"):
        r = rows[f"name variant: {variant}"]
        assert r["redacted"]["n"] + sum(n in r["dropped_as_ambiguous"] for n in redacted_names) == 10
        assert r["redacted"]["identified_after"] <= r["redacted"]["identified_before"]