"""The attack end to end on the synthetic world: separation, calibration, exact encoding, caching, bad input."""

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from idia.attack.decide.metrics import tpr_at_fpr
from idia.attack.encode.caches import TextCache
from idia.attack.encode.encoder import encode_texts
from idia.attack.model.load import load_clip
from idia.attack.run import run_attack, write_attack
from idia.attack.settings import AttackSettings


def _rates(persons):
    y = np.array([p.label for p in persons])
    v = np.array([p.member for p in persons])
    return v[y].mean(), v[~y].mean()


def test_paper_rule_flags_members_and_not_non_members(paper_run):
    result = paper_run.result
    assert result.rule["decided_by"] == "paper" and result.rule["tau"] == 1
    assert result.rule["n_prompts"] == 21 and result.candidates["n"] == 1000
    tpr, fpr = _rates(result.persons)
    # Measured on the shipped world: see world.json's evaluation; margins below.
    assert tpr >= 0.75
    assert fpr <= 0.03
    assert result.metrics["tpr"] == pytest.approx(tpr) and result.metrics["fpr"] == pytest.approx(fpr)
    assert result.metrics["roc"]["auc"] > 0.97


def test_identification_grows_with_occurrences_in_training(paper_run, world_model_dir):
    from idia.world import read_world_record
    counts = read_world_record(world_model_dir)["train_images_per_member"]
    by_count = {}
    for p in paper_run.result.persons:
        if p.label:
            by_count.setdefault(counts[p.name], []).append(p.member)
    rates = [np.mean(by_count[c]) for c in sorted(by_count)]
    assert rates[-1] > rates[0]


def test_calibrated_continuous_score_beats_the_paper_rule_at_the_same_fpr(paper_run, calibrated_run):
    paper, cal = paper_run.result, calibrated_run.result
    assert cal.rule["decided_by"] == "calibrated-continuous"
    assert cal.calibration["reference_fpr"] <= 0.01
    tpr_paper, fpr_paper = _rates(paper.persons)
    tpr_cal, fpr_cal = _rates(cal.persons)
    assert fpr_cal <= fpr_paper + 0.02  # at (about) the same measured FPR on the audited non-members
    assert tpr_cal > tpr_paper
    # The same on the ROC curve: the continuous score's TPR at the paper rule's measured FPR is higher.
    y = np.array([p.label for p in paper.persons])
    cont = np.array([p.mean_log_prob for p in paper.persons])
    assert tpr_at_fpr(y, cont, fpr_paper) > tpr_paper


def test_p_values(paper_run, calibrated_run):
    for p in paper_run.result.persons:  # analytic bound: 21 / (score * 1000)
        assert p.p_value == pytest.approx(1.0 if p.score == 0 else min(1.0, 21 / (p.score * 1000)))
    null = np.array(calibrated_run.result.calibration["null_scores"])
    for p in calibrated_run.result.persons:
        assert p.p_value == pytest.approx((1 + (null >= p.mean_log_prob).sum()) / (1 + len(null)))
        assert p.member == (p.p_value <= 0.01)


def test_results_json_and_scores_csv_hold_every_number(paper_run, tmp_path):
    write_attack(paper_run, tmp_path)
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["schema_version"] == 1 and data["kind"] == "idia-attack"
    m = data["manifest"]
    assert len(m["inputs"]["checkpoint"]["sha256"]) == 64
    assert len(m["inputs"]["images"]) == sum(p["n_images"] for p in data["persons"])
    assert m["inputs"]["templates_sha256"] and m["inputs"]["candidates"]["sha256"]
    person = data["persons"][0]
    for key in ("name", "n_images", "score", "member", "p_value", "votes", "images"):
        assert key in person
    assert len(person["votes"]) == 21 and len(person["images"][0]["top"]) == 5
    rows = list(csv.DictReader(io.StringIO((tmp_path / "scores.csv").read_text())))
    assert len(rows) == 21 * len(m["inputs"]["images"])
    # Recompute one person's score from the raw table: per prompt, the majority of predictions.
    for person in data["persons"][:20]:
        mine = [r for r in rows if r["person"] == person["name"]]
        score = 0
        for j in range(21):
            preds = [r["predicted"] for r in mine if int(r["prompt_index"]) == j]
            names, counts = np.unique(preds, return_counts=True)
            top = counts.max()
            if (counts == top).sum() == 1 and names[counts.argmax()] == person["name"]:
                score += 1
        assert score == person["score"]


def test_rerun_reuses_the_text_cache_and_gives_identical_results(world_model, world_photos, world_model_dir, tmp_path):
    cfg = AttackSettings(model=str(world_model_dir), people=world_photos / "people", progress=False,
                       n_candidates=300, cache_dir=tmp_path / "cache", command="idia attack")
    first = run_attack(cfg, loaded=world_model)
    second = run_attack(cfg, loaded=world_model)
    assert not first.timings["text_cached"] and second.timings["text_cached"]
    a, b = first.result.to_dict(), second.result.to_dict()
    for key in ("created_utc", "timings"):  # when it ran and how long it took (the caches made it faster)
        a["manifest"].pop(key), b["manifest"].pop(key)
    a.pop("encoding"), b.pop("encoding")  # which embeddings came from the caches: the second run's did
    assert a == b
    assert second.result.encoding["caches"]["images_from_cache"] == first.result.encoding["caches"]["images_encoded"] > 0
    write_attack(first, tmp_path / "first"), write_attack(second, tmp_path / "second")
    assert (tmp_path / "first" / "scores.csv").read_bytes() == (tmp_path / "second" / "scores.csv").read_bytes()


def test_trimmed_text_encoding_is_exact(world_model):
    texts = ["a photo of Ana Li", "the name of the person is Bartholomew Featherstonehaugh", "x", "actor Ji Ho"]
    full = encode_texts(world_model, texts, trim=False, progress=False)
    trimmed = encode_texts(world_model, texts, trim=True, progress=False)
    assert np.abs(full - trimmed).max() < 1e-6


@pytest.mark.slow
def test_trimmed_text_encoding_is_exact_on_a_vit_b_32_text_tower():
    torch.manual_seed(0)
    vit = load_clip("ViT-B-32", allow_random=True)
    texts = ["a photo of Ana Li", "a black and white photo of Bartholomew Featherstonehaugh", "{0}"]
    full = encode_texts(vit, texts, trim=False, progress=False)
    trimmed = encode_texts(vit, texts, trim=True, progress=False)
    assert np.abs(full - trimmed).max() < 1e-5


def test_text_cache_key_depends_on_weights_templates_and_names(world_model, tmp_path):
    cache = TextCache(tmp_path)
    k = cache.key(world_model, ["{0}"], ["A B"])
    assert k != cache.key(world_model, ["a photo of {0}"], ["A B"])
    assert k != cache.key(world_model, ["{0}"], ["A C"])


def _png(path, size=(16, 16)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (120, 30, 60)).save(path)


def test_bad_images_are_skipped_listed_and_people_without_images_reported(world_model, world_model_dir,
                                                                          world_photos, tmp_path):
    people = tmp_path / "people"
    good = sorted((world_photos / "people").iterdir())[0]
    (people / good.name).mkdir(parents=True)
    for f in sorted(good.glob("*.png"))[:3]:
        (people / good.name / f.name).write_bytes(f.read_bytes())
    (people / good.name / "notes.txt").write_text("not a photo")
    (people / good.name / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    Image.new("L", (8000, 8000)).save(people / good.name / "bomb.png")  # 64 megapixels
    (people / "Nobody Here").mkdir()
    (people / "Nobody Here" / "empty.jpg").write_bytes(b"")
    warnings = []
    run = run_attack(AttackSettings(model=str(world_model_dir), people=people, n_candidates=50, progress=False,
                                  cache_dir=tmp_path / "c"), loaded=world_model, warn=warnings.append)
    result = run.result
    assert [p.name for p in result.persons] == [good.name]
    assert result.persons[0].n_images == 3
    skipped = {s["file"].rsplit("/", 1)[1]: s["why"] for s in result.persons[0].skipped}
    assert set(skipped) == {"notes.txt", "broken.png", "bomb.png"}
    assert "decompression bomb" in skipped["bomb.png"]
    assert result.not_auditable[0]["name"] == "Nobody Here"
    assert any("Nobody Here" in w and "cannot be audited" in w for w in warnings)


def test_user_candidates_missing_true_names_are_added_and_recorded(world_model, world_model_dir, world_photos,
                                                                   tmp_path):
    names = sorted(p.name for p in (world_photos / "people").iterdir())[:3]
    people = tmp_path / "people"
    for n in names:
        (people / n).mkdir(parents=True)
        for f in sorted((world_photos / "people" / n).glob("*.png"))[:2]:
            (people / n / f.name).write_bytes(f.read_bytes())
    cand = tmp_path / "candidates.txt"
    cand.write_text("\n".join([names[0], "Zed Nobody", "Ada Lovecraft"]) + "\n")
    run = run_attack(AttackSettings(model=str(world_model_dir), people=people, candidates=cand, progress=False,
                                  cache_dir=tmp_path / "c"), loaded=world_model)
    assert run.result.candidates["added_true_names"] == names[1:]
    assert run.result.candidates["n"] == 5
    assert any("were added" in w for w in run.result.warnings)


def test_option_conflicts_are_refused(world_model, world_model_dir, world_photos, tmp_path):
    from idia.errors import InputError
    base = dict(model=str(world_model_dir), people=world_photos / "people", progress=False)
    with pytest.raises(InputError, match="needs --reference"):
        run_attack(AttackSettings(**base, target_fpr=0.05), loaded=world_model)
    with pytest.raises(InputError, match="not both"):
        run_attack(AttackSettings(**base, reference=world_photos / "reference", tau=2, target_fpr=0.05),
                   loaded=world_model)


def test_cli_attack_writes_results_and_scores(world_model_dir, world_photos, tmp_path):
    people = tmp_path / "people"
    for d in sorted((world_photos / "people").iterdir())[:4]:
        (people / d.name).mkdir(parents=True)
        for f in sorted(d.glob("*.png"))[:3]:
            (people / d.name / f.name).write_bytes(f.read_bytes())
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "idia", "attack", "--model", str(world_model_dir),
                           "--people", str(people), "--n-candidates", "100", "--max-images", "2",
                           "--out", str(out), "--quiet"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    data = json.loads((out / "results.json").read_text())
    assert [p["n_images"] for p in data["persons"]] == [2, 2, 2, 2]
    assert "--max-images 2" in data["manifest"]["command"]
    assert (out / "scores.csv").read_text().count("\n") == 1 + 4 * 2 * 21


def test_prompt_tokens_assembled_from_pieces_equal_whole_prompt_tokens(world_model):
    from idia.attack.encode.text import assemble_prompt_tokens, tokenize_prompts
    from idia.attack.inputs.distractors import build_candidates
    from idia.attack.inputs.prompts import PAPER_TEMPLATES, fill
    names = build_candidates(["Zoë O'Neil", "Jean-Luc Picard", "Ana  María", "X Æ A-12"], 300, seed=4).names
    templates = list(PAPER_TEMPLATES) + ["{0}'s portrait", "({0})", "a very long caption that runs past the context "
                                         "length of the tiny model with {0} at its end"]
    tok = world_model.tokenizer
    # The fast path itself is exact for the paper's templates, odd names included ...
    assert torch.equal(assemble_prompt_tokens(tok, PAPER_TEMPLATES, names), tok(fill(PAPER_TEMPLATES, names)))
    # ... and whatever the templates, the result equals whole-prompt tokenization (falling back if need be).
    assert torch.equal(tokenize_prompts(tok, templates, names), tok(fill(templates, names)))
