"""The evidence partials render the `evidence`, `rule` and `distractors` blocks built by the library, through the
report's own jinja environment (autoescaped, undefined fields raise)."""

import json

import numpy as np
import pytest

from idia.attack.decide.controls import evidence_blocks
from idia.attack.decide.permutation import PermutationTest
from idia.attack.inputs.distractors import describe_distractors, make_matched_distractors
from idia.compliance.report import people, templating

HOSTILE = "<script>alert(1)</script> Smith"


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


def _takedown_partial(person, data):
    drawn = people.drawn_for(data, {"distractor_group": person.get("distractor_group")})
    return templating.environment().get_template("_evidence_takedown.html").render(person=person, data=data, drawn=drawn)


def _audit_partial(persons, data):
    return templating.environment().get_template("_evidence_audit.html").render(
        persons=persons, data=data, distractor_groups=people.distractor_groups(data))


def _grouped(persons, data):
    """The record of a per-person question with --attributes: person 0 matched (f, east_asia), the rest default."""
    from idia.attack.inputs.question import DistractorGroup
    groups = [DistractorGroup("default", make_matched_distractors(27, set(), 0), "balanced", 0, balance_sex=True),
              DistractorGroup("gender=f,origin=east_asia", make_matched_distractors(27, set(), 9, "f", "east_asia"),
                              "matched", 9, gender="f", origin="east_asia")]
    blocks = [groups[0].describe(2), groups[1].describe(1)]
    data = {**data, "distractors": {**{k: v for k, v in blocks[0].items() if k not in ("id", "people")},
                                    "groups": blocks}}
    persons = [{**p, "distractor_group": g} for p, g in zip(persons, ["gender=f,origin=east_asia", "default",
                                                                       "default"])]
    return persons, data


def test_each_takedown_says_how_that_persons_distractors_were_drawn():
    persons, data = _grouped(*_record(False))
    matched, default = _takedown_partial(persons[0], data), _takedown_partial(persons[1], data)
    assert "matched to the person: female first names (unisex ones included), first names and surnames of " \
           "origin east asia" in matched and "(seed 9;" in matched
    assert "By origin: east_asia 27." in matched and "half female and half male" not in matched
    assert "half female and half male first names" in default and "matched to the person" not in default


def test_the_audit_lists_every_group_and_each_persons():
    persons, data = _grouped(*_record(False))
    html = _audit_partial(persons, data)
    assert "2 lists were drawn" in html and "<b>gender=f,origin=east_asia</b> (1 person)" in html
    assert "<b>default</b> (2 people)" in html and "<th>Distractors</th>" in html
    assert html.count("<td>default</td>") == 2 and html.count("<td>gender=f,origin=east_asia</td>") == 1


@pytest.mark.parametrize("with_study", [True, False])
def test_takedown_partial_explains_the_evidence(with_study):
    persons, data = _record(with_study)
    html = _takedown_partial(persons[0], data)
    ev = persons[0]["evidence"]
    assert ev["permutation"]["flagged"] and ev["permutation"]["rank"] == 1
    assert "place <b>1</b> of 28" in html
    assert f"Name side p-value: {templating._pval(ev['permutation']['p_value'])}" in html
    # the rule's assumption is stated once per report, by the takedown itself (issue 18), not again here
    assert "has not learned this person has no reason to rank" in data["rule"]["assumption"]
    assert data["rule"]["assumption"] not in html and "What would break it" not in html
    assert "half female and half male" in html and "By the first name's sex: female 13, male 14." in html
    assert "D5 X" in html  # the alias tried, and which name the model knows
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "redrawn 10 times" in html
    assert ("data:image/png;base64" in html) == with_study


def test_audit_partial_lists_everyone():
    persons, data = _record(False)
    html = _audit_partial(persons, data)
    for p in persons:
        assert templating._pval(p["evidence"]["prior"]["corrected_p_value"]) in html
    assert html.count("<tr><td>") == 3 and "&lt;script&gt;" in html and "<script>" not in html
    genders = data["distractors"]["counts"]["gender"]
    assert sum(genders.values()) == 27
    assert "first name's sex: female 13, male 14." in html and sum(genders.values()) == 27
    assert "<th>Distractors</th>" not in html  # one list: no column naming it


def test_partials_refuse_a_record_missing_the_evidence():
    import jinja2
    persons, data = _record(False)
    del persons[0]["evidence"]["prior"]
    with pytest.raises(jinja2.UndefinedError):
        _takedown_partial(persons[0], data)
