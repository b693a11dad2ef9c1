"""A refactor keeps results identical: the world's persons, scores, verdicts and p-values, pinned.

The pinned runs draw their distractors uniformly (`--distractor-draw uniform`, the draw the figures were pinned
with), so the file keeps guarding that code path while the default draw balances the distractors by sex."""

import hashlib
import json
from pathlib import Path

import pytest

PINNED = json.loads((Path(__file__).parent / "data" / "pinned_world.json").read_text(encoding="utf-8"))


# `mean_log_prob` is a float: another CPU (another BLAS path) changes its last digits, so it is compared within
# this tolerance; everything discrete (names, scores, verdicts, p-values, votes) is compared exactly.
MEAN_LOG_PROB_TOLERANCE = 2e-5


def _differences(got, pinned) -> list:
    """The people on whom the runs disagree: discrete fields exactly, mean_log_prob (index 4) within the
    tolerance (an empty list: identical)."""
    assert len(got) == len(pinned), (len(got), len(pinned))
    return [(g, p) for g, p in zip(got, pinned)
            if g[:4] + g[5:] != p[:4] + p[5:] or abs(g[4] - p[4]) > MEAN_LOG_PROB_TOLERANCE]


def _compact(result):
    return [[p.name, p.score, p.member, p.p_value, round(p.mean_log_prob, 5),
             hashlib.sha256(json.dumps([v.vote for v in p.votes]).encode()).hexdigest()[:16]]
            for p in result.persons + result.reference]


@pytest.mark.slow
def test_paper_rule_results_are_pinned(attack_world):
    run = attack_world("paper", distractor_draw="uniform")
    assert run.result.candidates["sha256"] == PINNED["paper_candidates_sha256"]
    assert _differences(_compact(run.result), PINNED["paper"]) == []


@pytest.mark.slow
def test_calibrated_results_are_pinned(attack_world):
    assert _differences(_compact(attack_world("calibrated", distractor_draw="uniform").result), PINNED["calibrated"]) == []


@pytest.mark.slow
def test_default_results_are_pinned(attack_world):
    """The default verdict (issue 18): name-and-face, everyone decided together by BH at q = 0.05. Pinned on
    purpose when the default changed from the permutation test at alpha = 0.01 per person; what changed is
    written in the file's `default_changed`."""
    r = attack_world("default", distractor_draw="uniform").result
    assert r.rule["decided_by"] == "name-and-face" and r.rule["level"]["kind"] == "fdr"
    assert _differences(_compact(r), PINNED["default"]) == []
    assert [p.q_value for p in r.persons] == PINNED["default_q_values"]
