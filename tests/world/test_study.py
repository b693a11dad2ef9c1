"""The permutation test on the world, measured: its false-positive rate on the world's non-members stays at or
below alpha and it identifies more members than the paper's rule; and `idia world study` reproduces the paper's
central finding (identification grows with occurrences in training)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from idia.compliance.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world_scores(world_photos, world_model_dir, tmp_path_factory):
    from idia.world.study import world_scores
    return world_scores(world_photos / "people", world_model_dir, cache_dir=tmp_path_factory.mktemp("study-cache"))


def test_scores_agree_with_the_attack(world_scores, paper_run):
    """The study's arrays are the attack's: same people, same paper scores as `idia attack` on the photos."""
    ws = world_scores
    by_name = {p.name: p.score for p in paper_run.result.persons}
    assert [by_name[n] for n in ws.names] == ws.paper_score_full.tolist()
    assert ws.image_scores.shape == (len(ws.owner), 1000) and int(ws.distractor_mask.sum()) == 800


def test_permutation_fpr_at_or_below_alpha_and_more_power_than_the_paper(world_scores):
    """Measured on the shipped world (fresh photos, 10 a person, 1,000 candidates, 800 made-up distractors drawn
    balanced by sex, the default), with the shipped checkpoint f96644f7… (values printed by this test with
    `pytest -s`):
      alpha 0.01: non-members flagged 0 of 100 (FPR 0.00, margin 0.01); members 96 of 100
      alpha 0.05: non-members flagged 5 of 100 (FPR 0.05, margin 0); members 100 of 100
      paper rule (tau 1): members 86 of 100, non-members 0 of 100.
    (With the uniform draw the distractors had before: 97, 3 and 100, 85.)
    (The issue's target: 88% at alpha 0.01 with 0 of 100 non-members.)"""
    from idia.world.study import verdicts
    ws = world_scores
    m = ws.is_member
    assert m.sum() == 100 and (~m).sum() == 100
    strict, loose = verdicts(ws, alpha=0.01), verdicts(ws, alpha=0.05)
    fpr_01, fpr_05 = strict["permutation"][~m].mean(), loose["permutation"][~m].mean()
    tpr_01, tpr_05 = strict["permutation"][m].mean(), loose["permutation"][m].mean()
    tpr_paper = strict["paper"][m].mean()
    print(f"FPR@0.01 {fpr_01:.2f} FPR@0.05 {fpr_05:.2f} TPR@0.01 {tpr_01:.2f} TPR@0.05 {tpr_05:.2f} "
          f"paper TPR {tpr_paper:.2f} FPR {strict['paper'][~m].mean():.2f}")
    assert fpr_01 <= 0.01 and fpr_05 <= 0.05
    assert tpr_01 >= 0.88 and tpr_01 > tpr_paper
    # Non-members' p-values are spread like a valid p-value's: no more small ones than alpha allows.
    p_non = np.sort(strict["p_value"][~m])
    for alpha in (0.1, 0.2, 0.5):
        assert (p_non <= alpha).mean() <= alpha + 0.1


def test_study_command_writes_the_curves(world_photos, tmp_path):
    out = tmp_path / "study"
    r = CliRunner().invoke(main, ["world", "study", "--out", str(out), "--photos", str(world_photos)])
    assert r.exit_code == 0, r.output
    record = json.loads((out / "study.json").read_text())
    assert (out / "study.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    occ = {row["occurrences"]: row for row in record["by_occurrences"]}
    assert sorted(occ) == [0, 5, 10, 25, 50]
    assert occ[0]["paper"]["n"] == 100 and all(occ[k]["paper"]["n"] == 25 for k in (5, 10, 25, 50))
    # The central finding: members seen 50 times are identified at least as often as those seen 5 times,
    # and non-members hardly ever.
    for rule in ("paper", "permutation"):
        assert occ[50][rule]["rate"] >= occ[5][rule]["rate"] > occ[0][rule]["rate"]
        lo, hi = occ[5][rule]["ci95"]
        assert lo <= occ[5][rule]["rate"] <= hi
    assert [row["photos"] for row in record["by_photos"]] == [1, 2, 5, 10]  # 10 photos written per person
    ten = record["by_photos"][-1]
    assert ten["members"]["permutation"]["k"] == sum(occ[k]["permutation"]["k"] for k in (5, 10, 25, 50))
    from idia.world.study import study_report_block
    block = study_report_block(out)
    assert block["plot"].startswith("data:image/png;base64,") and "50 times" in block["summary"]


def test_study_refuses_a_folder_without_people(tmp_path):
    r = CliRunner().invoke(main, ["world", "study", "--out", str(tmp_path / "o"), "--photos", str(tmp_path)])
    assert r.exit_code == 2 and "no people/ folder" in r.output
