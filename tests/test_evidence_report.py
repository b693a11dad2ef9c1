"""The evidence partials render the `evidence`, `rule` and `distractors` blocks built by the library, through the
report's own jinja environment (autoescaped, undefined fields raise)."""

import json
from pathlib import Path

import numpy as np
import pytest

from attack.controls import evidence_blocks
from attack.names import describe_distractors, make_matched_distractors
from attack.permutation import PermutationTest
from compliance import report

HOSTILE = "<script>alert(1)</script> Smith"
CHECKOUT_TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


@pytest.fixture(autouse=True)
def this_checkouts_templates(monkeypatch):
    """Render this checkout's templates even when the installed `idia_templates` points at another checkout
    (an editable install shared between worktrees)."""
    monkeypatch.setattr(report, "_templates_dir", lambda: CHECKOUT_TEMPLATES)


def _record(with_study: bool):
    rng = np.random.default_rng(0)
    n_people, per, n_cand, n_prompts = 3, 6, 30, 4
    owner = np.repeat(np.arange(n_people), per)
    true = np.array([0, 1, 2])
    scores = rng.normal(size=(n_people * per, n_cand))
    scores[owner == 0, 0] += 4.0  # person 0 is known; 1 and 2 are not
    preds = np.stack([scores.argmax(axis=1)] * n_prompts, axis=1)
    mask = np.ones(n_cand, dtype=bool)
    mask[true] = False
    cand_names = [HOSTILE, "Bo Chen", "Cy Young"] + [f"D{i} X" for i in range(3, n_cand)]
    aliases = [[0, 5], [1], [2]]
    blocks = evidence_blocks(scores, preds, owner, true, alpha=0.05, distractor_mask=mask, aliases=aliases,
                             candidate_names=cand_names, n_resamples=10)
    json.dumps(blocks, allow_nan=False)  # the record holds plain JSON
    persons = [{"name": cand_names[i], "evidence": blocks[i]} for i in range(n_people)]
    data = {"rule": {**PermutationTest(0.05).describe(), "n_prompts": n_prompts},
            "distractors": describe_distractors(make_matched_distractors(27, set(), 0), "matched", 0)}
    if with_study:
        data["study"] = {"plot": "data:image/png;base64,iVBORw0KGgo=", "summary": "people seen 50 times: 100%"}
    return persons, data


@pytest.mark.parametrize("with_study", [True, False])
def test_takedown_partial_explains_the_evidence(with_study):
    persons, data = _record(with_study)
    html = report._env().get_template("_evidence_takedown.html").render(person=persons[0], data=data)
    ev = persons[0]["evidence"]
    assert ev["permutation"]["flagged"] and ev["permutation"]["rank"] == 1
    assert "place <b>1</b> of 28" in html
    assert f"p-value {report._pval(ev['permutation']['p_value'])}" in html
    assert "has not learned this person has no reason to rank" in html  # the assumption, in words
    assert "What would break it" in html and "made-up first + last names" in html
    assert "half female and half male" in html
    assert "D5 X" in html  # the alias tried, and which name the model knows
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "redrawn 10 times" in html
    assert ("data:image/png;base64" in html) == with_study


def test_audit_partial_lists_everyone():
    persons, data = _record(False)
    html = report._env().get_template("_evidence_audit.html").render(persons=persons, data=data)
    for p in persons:
        assert report._pval(p["evidence"]["prior"]["corrected_p_value"]) in html
    assert html.count("<tr><td>") == 3 and "&lt;script&gt;" in html and "<script>" not in html
    genders = data["distractors"]["counts"]["gender"]
    assert sum(genders.values()) == 27
    assert "By gender: " + ", ".join(f"{k} {v}" for k, v in genders.items()) + "." in html


def test_partials_refuse_a_record_missing_the_evidence():
    import jinja2
    persons, data = _record(False)
    del persons[0]["evidence"]["prior"]
    with pytest.raises(jinja2.UndefinedError):
        report._env().get_template("_evidence_takedown.html").render(person=persons[0], data=data)
