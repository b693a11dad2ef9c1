"""Does a results.json hold together? The one check every reader runs before it believes a record: `idia report`,
the YAML audit when it resumes, a verification's readers (before/ and after/results.json) and `idia check`.

A record holds together when
  * each person's figures follow from their own entries: n_images from the photos listed, the score from the
    prompt votes (a tie names nobody), the evidence block's paper score, flags and permutation p-value from its
    rank and distractors;
  * the verdicts and p-values follow from the recorded statistics under the recorded rule: the rule re-derives
    them itself (`Rule.rederive`, in `attack.decide.rules`), with its calibration block, and whether it could flag
    anyone at all at the recorded levels (`Rule.check_levels`, the record's `rule.cannot_flag`);
  * the counts follow from the persons: the metrics from the verdicts and labels;
  * every photo a person lists is in the manifest under that person, with the same SHA-256;
  * the files it links, when they are beside it (the scores table), have the SHA-256 it records.
Statistics themselves (a rank, a continuous score) can only be checked against the embeddings; that is a rerun.

Nothing here imports torch: the report reads records on machines without it.
"""

from __future__ import annotations

import math
from pathlib import Path

from idia.errors import InputError
from idia.names import name_key

TOLERANCE = 1e-8  # p-values are recorded rounded to 8 digits in the evidence blocks


class Inconsistent(InputError):
    """A record whose parts do not follow from one another: edited, or from two runs."""


def _same(a, b, tol: float = TOLERANCE) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=tol)


def _fail(where: str, problem: str):
    raise Inconsistent(f"the record does not hold together: {where}: {problem} (edited, or parts of two runs)")


def check_attack_record(data: dict, folder: str | Path | None = None) -> None:
    """Raise `Inconsistent` (an InputError: one line) naming the first part of the record that does not follow
    from the rest; `folder` is where the record lies, whose linked files (scores table) are checked too."""
    rule = data["rule"]
    n_prompts = int(rule["n_prompts"])
    for key in ("persons", "reference"):
        for i, person in enumerate(data.get(key) or []):
            where = f"{key}[{i}] ({person['name']!r})"
            _check_person(person, rule, n_prompts, where)
            _check_evidence(person, rule, where)
    _check_verdicts(data)
    _check_metrics(data)
    _check_photos(data)
    if folder is not None:
        check_linked_files(data, Path(folder))


def _check_person(p: dict, rule: dict, n_prompts: int, where: str) -> None:
    if p["n_images"] != len(p["images"]):
        _fail(where, f"n_images is {p['n_images']} but {len(p['images'])} photos are listed")
    if len(p["votes"]) != n_prompts:
        _fail(where, f"{len(p['votes'])} prompt votes for the rule's {n_prompts} prompts")
    own = name_key(p["name"])
    for j, v in enumerate(p["votes"]):
        if v["tie"] and v["vote"] is not None:
            _fail(f"{where}.votes[{j}]", f"a tie that names {v['vote']!r}")
        if v["is_true_name"] != (v["vote"] is not None and name_key(v["vote"]) == own):
            _fail(f"{where}.votes[{j}]", f"is_true_name is {str(v['is_true_name']).lower()} for the vote "
                                         f"{v['vote']!r}")
        if not 0 <= v["images_agreeing"] <= p["n_images"]:
            _fail(f"{where}.votes[{j}]", f"{v['images_agreeing']} photos agreeing of {p['n_images']}")
    score = sum(v["is_true_name"] for v in p["votes"])
    if p["score"] != score:
        _fail(where, f"score is {p['score']} but {score} prompt votes name the person")


def _check_evidence(p: dict, rule: dict, where: str) -> None:
    ev = p.get("evidence")
    if not ev:
        return
    paper, perm = ev.get("paper") or {}, ev.get("permutation") or {}
    if paper:
        if paper.get("score") != p["score"]:
            _fail(f"{where}.evidence.paper", f"score {paper.get('score')} differs from the person's {p['score']}")
        if paper.get("flagged") is not (p["score"] >= paper.get("tau", rule.get("tau") or 1)):
            _fail(f"{where}.evidence.paper", f"flagged is {paper.get('flagged')} for score {p['score']}")
    if perm:
        p_value = perm.get("p_value")
        expected = perm.get("rank", 0) / (1 + perm.get("n_distractors", 0))
        if not _same(p_value, expected):
            _fail(f"{where}.evidence.permutation", f"p-value {p_value} is not rank {perm.get('rank')} / (1 + "
                                                   f"{perm.get('n_distractors')} distractors) = {expected:.8g}")
        if perm.get("flagged") is not (p_value is not None and p_value <= perm.get("alpha", rule["alpha"])):
            _fail(f"{where}.evidence.permutation", f"flagged is {perm.get('flagged')} for p-value {p_value}")


def _check_verdicts(data: dict) -> None:
    """The rule re-derives every verdict and p-value (and its calibration block) from the recorded statistics."""
    from idia.attack.decide.rules import levels_from_record, recorded_rule
    rule = recorded_rule(data["rule"]["decided_by"])
    try:
        cannot = rule.check_levels(levels_from_record(data))
    except InputError as e:
        _fail("rule", f"its levels cannot be run at all ({e})")
    if data["rule"].get("cannot_flag") != cannot:
        said = data["rule"].get("cannot_flag")
        _fail("rule.cannot_flag", f"the record says {said!r}, but at its levels: {cannot or 'someone can be flagged'}")
    derived = rule.rederive(data)
    people = [("persons", i, p) for i, p in enumerate(data["persons"])] + \
             [("reference", i, p) for i, p in enumerate(data.get("reference") or [])]
    for (key, i, p), member, p_value in zip(people, derived.member, derived.p_values):
        where = f"{key}[{i}] ({p['name']!r})"
        if not _same(p["p_value"], float(p_value)):
            _fail(where, f"p-value {p['p_value']} but the {rule.name} rule gives {float(p_value):.8g} from the "
                         "recorded statistics")
        if p["member"] is not bool(member):
            _fail(where, f"member is {str(p['member']).lower()} but the {rule.name} rule gives "
                         f"{str(bool(member)).lower()} (p-value {p['p_value']:.4g}, score {p['score']})")
    _check_calibration(data.get("calibration"), derived.calibration)


CALIBRATION_KEYS = ("threshold", "n_reference", "reference_false_positives", "reference_fpr", "target_fpr",
                    "null_scores", "null_paper_scores")


def _check_calibration(recorded: dict | None, derived: dict | None) -> None:
    if (recorded is None) != (derived is None):
        _fail("calibration", "present without reference people" if derived is None else "missing")
    for key in CALIBRATION_KEYS if derived else ():
        a, b = recorded.get(key), derived.get(key)
        if isinstance(b, (list, tuple)):
            ok = isinstance(a, list) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
        else:
            ok = _same(a, b) if isinstance(b, (int, float)) or b is None else a == b
        if not ok:
            _fail(f"calibration.{key}", f"{_short(a)} but the reference people give {_short(b)}")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_metrics(data: dict) -> None:
    """The metrics' counts and rates from the audited people's verdicts and labels."""
    labelled = [(p["label"], p["member"]) for p in data["persons"] if p.get("label") is not None]
    m = data.get("metrics")
    if m is None:
        if labelled:
            _fail("metrics", f"missing, though {len(labelled)} audited people are labelled")
        return
    tp = sum(y and v for y, v in labelled)
    fp = sum((not y) and v for y, v in labelled)
    fn = sum(y and not v for y, v in labelled)
    tn = len(labelled) - tp - fp - fn
    expected = {"n_labelled": len(labelled), "n_members": tp + fn, "n_nonmembers": fp + tn, "true_positives": tp,
                "false_positives": fp, "true_negatives": tn, "false_negatives": fn,
                "tpr": tp / max(tp + fn, 1), "fpr": fp / max(fp + tn, 1), "accuracy": (tp + tn) / max(len(labelled), 1)}
    for key, value in expected.items():
        if key in m and not _same(m[key], value, 1e-9):
            _fail(f"metrics.{key}", f"{m[key]} but the labelled people's verdicts give {value:.6g}")


def _check_photos(data: dict) -> None:
    """Each person's photos are in the manifest under that person, with the same SHA-256."""
    listed = {(im.get("person"), im.get("file")): im.get("sha256")
              for im in (data["manifest"].get("inputs") or {}).get("images") or []}
    for key in ("persons", "reference"):
        for i, p in enumerate(data.get(key) or []):
            for j, im in enumerate(p["images"]):
                if listed.get((p["name"], im["file"])) != im["sha256"]:
                    _fail(f"{key}[{i}].images[{j}] ({im['file']})",
                          "its SHA-256 is not the one the manifest lists for this person's photo")


def check_linked_files(data: dict, folder: Path) -> None:
    """The files the record names in `manifest.outputs` that lie beside it have the SHA-256 it records; a scores
    table beside it that the record does not name is another run's."""
    outputs = (data.get("manifest") or {}).get("outputs") or {}
    for name, entry in outputs.items():
        path = folder / name
        if not isinstance(entry, dict) or "sha256" not in entry or not path.is_file():
            continue
        if _sha256(path) != entry["sha256"]:
            _fail(f"manifest.outputs[{name!r}]", f"{path} beside it is not the file this record was written with "
                                                 "(SHA-256 differs)")
    for table in ("scores.csv", "scores.csv.gz"):
        if (folder / table).is_file() and outputs and table not in outputs:
            _fail("manifest.outputs", f"{folder / table} beside it is another run's table (the record names "
                                      f"{', '.join(outputs)})")


def _sha256(path: Path) -> str:
    from idia.io import sha256_file
    return sha256_file(path)
