"""A record holds together or is refused: verdicts re-derived by their rule from the statistics the record holds,
counts from the persons, photos from the manifest, linked files from their SHA-256.

The fast rule is `attack.record.check` reading a results.json; its slow twin is the rule deciding on the arrays
the record was made from. Records here are built from random statistics by the rules themselves."""

import copy
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idia.attack.decide.metrics import membership_metrics
from idia.attack.decide.rules import RULES, Levels, RecordedStatistics, RuleInputs
from idia.attack.record.check import Inconsistent, check_attack_record, check_linked_files

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _person(i, name, score, n_prompts, n_images, member, p, mlp, rank, n_dist, alpha, tau, label):
    score = int(score)
    votes = [{"template": f"t{j} {{0}}", "vote": name if j < score else (None if j % 2 else f"Other {j}"),
              "images_agreeing": 1 if j < score or not j % 2 else 0, "tie": j >= score and bool(j % 2),
              "is_true_name": j < score} for j in range(n_prompts)]
    images = [{"file": f"{name}/{k}.png", "sha256": f"{i:032x}{k:032x}", "top": [[name, 0.5]], "true_rank": 1.0,
               "true_prob": 0.5, "top_tie": False} for k in range(n_images)]
    perm_p = round(float(rank) / (1 + n_dist), 8)
    return {"name": name, "n_images": n_images, "score": int(score), "member": bool(member), "p_value": float(p),
            "mean_log_prob": float(mlp), "mean_rank": 1.0, "mean_prob": 0.5, "votes": votes, "images": images,
            "skipped": [], "label": label, "distractor_group": "default",
            "evidence": {"permutation": {"p_value": perm_p, "rank": int(rank), "n_distractors": n_dist,
                                         "alpha": alpha, "flagged": bool(perm_p <= alpha), "true_score": float(mlp)},
                         "paper": {"score": int(score), "n_prompts": n_prompts, "tau": tau,
                                   "flagged": bool(score >= tau)},
                         "aliases": None}}


def make_record(seed: int, rule_name: str, n_audited: int = 6, n_reference: int = 0, n_prompts: int = 5,
                n_dist: int = 40, labelled: bool = True) -> dict:
    """A record the way the decide stage makes one, from random statistics: the rule decides, the metrics are
    measured on the verdicts (the slow twin the check is compared with)."""
    rng = np.random.default_rng(seed)
    n = n_audited + n_reference
    score = rng.integers(0, n_prompts + 1, n)
    mlp = rng.normal(-4.0, 1.0, n)
    rank = rng.integers(1, n_dist + 2, n)
    alpha, tau, target = 0.05, 2, (0.25 if rule_name == "calibrated" else None)
    rule = RULES.get(rule_name)
    inputs = RuleInputs(RecordedStatistics(score, mlp), np.round(rank / (1 + n_dist), 8), np.arange(n) >= n_audited,
                        n_prompts, n_dist + n_audited, alpha, tau if rule_name == "paper" else 1, target, False)
    v = rule.decide(inputs)
    labels = [bool(x) for x in rng.integers(0, 2, n_audited)] if labelled else [None] * n_audited
    people = [_person(i, f"Person{i} Test", score[i], n_prompts, 1 + i % 3, v.member[i], v.p_values[i], mlp[i],
                      rank[i], n_dist, alpha, inputs.tau, labels[i] if i < n_audited else None) for i in range(n)]
    metrics = None
    if labelled:
        metrics = membership_metrics(np.array(labels), v.member[:n_audited], mlp[:n_audited], score[:n_audited])
        metrics["n_labelled"] = n_audited
    rule_doc = {"decided_by": rule.recorded, "tau": inputs.tau, "target_fpr": target, "alpha": alpha,
                "n_prompts": n_prompts, "n_candidates": inputs.n_candidates, "explanation": v.explanation,
                "p_value_method": v.p_value_method,
                "cannot_flag": rule.check_levels(Levels(n_prompts, n_dist, n_reference, alpha, inputs.tau, target))}
    images = [{"person": p["name"], "file": im["file"], "sha256": im["sha256"]} for p in people for im in p["images"]]
    record = {"manifest": {"inputs": {"images": images}, "outputs": {}}, "rule": rule_doc,
              "calibration": v.calibration, "metrics": metrics, "persons": people[:n_audited],
              "reference": people[n_audited:]}
    return json.loads(json.dumps(record, allow_nan=False))  # as a reader gets it


CASES = [("permutation", 0), ("paper", 0), ("paper", 9), ("calibrated", 9)]


@FAST
@given(st.integers(0, 2**31), st.sampled_from(CASES), st.booleans())
def test_a_record_made_by_its_rule_holds_together_and_its_rule_rederives_it(seed, case, labelled):
    rule_name, n_reference = case
    record = make_record(seed, rule_name, n_reference=n_reference, labelled=labelled)
    check_attack_record(record)
    again = RULES.get(rule_name).rederive(record)
    everyone = record["persons"] + record["reference"]
    assert again.member.tolist() == [p["member"] for p in everyone]
    assert again.p_values.tolist() == pytest.approx([p["p_value"] for p in everyone], abs=1e-12)


def _flip_member(r, i):
    r["persons"][i]["member"] = not r["persons"][i]["member"]


def _p_value(r, i):
    r["persons"][i]["p_value"] = 0.63 if r["persons"][i]["p_value"] < 0.5 else 0.001


def _score(r, i):
    r["persons"][i]["score"] += 1


def _vote(r, i):
    v = r["persons"][i]["votes"][-1]
    v.update(vote=r["persons"][i]["name"], tie=False, is_true_name=not v["is_true_name"])


def _n_images(r, i):
    r["persons"][i]["n_images"] += 1


def _evidence_p(r, i):
    r["persons"][i]["evidence"]["permutation"]["rank"] += 1


def _photo(r, i):
    r["persons"][i]["images"][0]["sha256"] = "f" * 64


def _cannot_flag(r, i):
    r["rule"]["cannot_flag"] = None if r["rule"]["cannot_flag"] else "nobody"


EDITS = [_flip_member, _p_value, _score, _vote, _n_images, _evidence_p, _photo, _cannot_flag]


@FAST
@given(st.integers(0, 2**31), st.sampled_from(CASES), st.sampled_from(EDITS), st.integers(0, 5))
def test_any_one_edit_is_refused_in_one_line(seed, case, edit, who):
    rule_name, n_reference = case
    record = make_record(seed, rule_name, n_reference=n_reference)
    edited = copy.deepcopy(record)
    edit(edited, who)
    with pytest.raises(Inconsistent) as e:
        check_attack_record(edited)
    assert "\n" not in str(e.value) and "does not hold together" in str(e.value)


def test_the_probes_edit_member_true_at_p_0_63_is_refused():
    """The probe: `member: true` for a person whose p-value 0.63 is far above alpha, rendered as "Identified"."""
    record = make_record(3, "permutation", n_dist=99)
    i = next(i for i, p in enumerate(record["persons"]) if p["p_value"] > 0.05)
    record["persons"][i]["member"] = True
    with pytest.raises(Inconsistent, match=rf"persons\[{i}\].*member is true but the permutation rule gives false"):
        check_attack_record(record)


def test_edited_counts_and_calibration_are_refused():
    """Variant: the counts the report tallies (metrics) and the calibration a verdict rests on."""
    record = make_record(4, "calibrated", n_reference=9)
    for key, edit in (("metrics.true_positives", lambda r: r["metrics"].update(
            true_positives=r["metrics"]["true_positives"] + 1)),
                      ("calibration.threshold", lambda r: r["calibration"].update(threshold=-99.0))):
        edited = copy.deepcopy(record)
        edit(edited)
        with pytest.raises(Inconsistent, match=key.replace(".", r"\.")):
            check_attack_record(edited)


def test_a_table_beside_the_record_must_be_the_one_it_names(tmp_path):
    """The probe: an old results.json beside a new scores.csv was used with it. Variant: a table of the other
    name (scores.csv.gz) beside a record that names scores.csv."""
    import hashlib
    record = make_record(5, "paper")
    table = tmp_path / "scores.csv"
    table.write_text("set,person\n")
    record["manifest"]["outputs"] = {"scores.csv": {"sha256": hashlib.sha256(table.read_bytes()).hexdigest()}}
    check_linked_files(record, tmp_path)
    table.write_text("set,person\naudit,X\n")
    with pytest.raises(Inconsistent, match="scores.csv beside it is not the file this record was written with"):
        check_linked_files(record, tmp_path)
    table.unlink()
    (tmp_path / "scores.csv.gz").write_bytes(b"\x1f\x8b")
    with pytest.raises(Inconsistent, match="another run's table"):
        check_linked_files(record, tmp_path)
