"""`idia check --rerun`: run the attack again from the manifest a report carries, on the same model and photos,
and list every difference from the carried record.

The settings come from the manifest's `settings` block (`AttackSettings.recorded`); `--model`, `--people`,
`--reference` and `--labels` say where those inputs are now. The inputs are checked by their SHA-256 (the
checkpoint, its configuration, the candidate names, the phrasings, the labels, and every photo as a (person,
SHA-256) pair), and the results compared field by field:

  exact        verdicts, scores, votes, ranks among distractors, counts, every p-value (any key holding
               "p_value"), text
  tolerance    other floats (continuous scores, thresholds, similarities): |a - b| <= TOLERANCE * max(1, |a|, |b|),
               the tolerance each report states (`document.RERUN_FLOAT_TOLERANCE`)
  not compared file paths (the photos are compared by SHA-256), the manifest's times, command and runtime, the
               encoder's device and caches, and notices (they name paths)

A takedown's record holds one person: the rerun audits everyone again (the verdict may depend on the others:
calibration, the shared candidate list) and compares that person, with other audited people's names withheld
as the report withholds them.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter

from idia.compliance.report import extracts
from idia.compliance.report.document import RERUN_FLOAT_TOLERANCE

TOLERANCE = RERUN_FLOAT_TOLERANCE
COMPARED = ("rule", "candidates", "calibration", "metrics", "distractors", "occurrences", "persons", "reference")
PATH_KEYS = {"file", "folder", "source", "checkpoint", "templates_source"}
INPUT_SKIP = {"checkpoint", "images", "all_images", "audit_config_sha256"}


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= TOLERANCE * max(1.0, abs(a), abs(b))


def differences(old, new, path: str, out: list[str], exact: bool = False) -> None:
    """Every difference between the recorded `old` and the rerun's `new`, appended to `out` as one line each."""
    if isinstance(old, dict):
        if not isinstance(new, dict):
            out.append(f"{path}: {_short(old)} recorded, {_short(new)} now")
            return
        for key, value in old.items():
            if key in PATH_KEYS and isinstance(value, str):
                continue
            if key not in new:
                out.append(f"{path}.{key}: recorded, absent now")
                continue
            differences(value, new[key], f"{path}.{key}", out, exact or "p_value" in key)
    elif isinstance(old, list):
        if not isinstance(new, list) or len(new) != len(old):
            out.append(f"{path}: {len(old)} entries recorded, {len(new) if isinstance(new, list) else _short(new)} now")
            return
        for i, (a, b) in enumerate(zip(old, new)):
            differences(a, b, f"{path}[{i}]", out, exact)
    elif isinstance(old, float) and isinstance(new, (int, float)) and not isinstance(new, bool) and not exact:
        if not _close(old, float(new)):
            out.append(f"{path}: {old!r} recorded, {new!r} now (beyond the tolerance {TOLERANCE})")
    elif old != new:
        out.append(f"{path}: {_short(old)} recorded, {_short(new)} now")


def _by_name(people: list[dict]) -> dict[str, dict]:
    return {p["name"]: p for p in people}


def _compare_people(old: list[dict], new: list[dict], where: str, out: list[str]) -> None:
    now = _by_name(new)
    for p in old:
        if p["name"] not in now:
            out.append(f"{where}[{p['name']!r}]: recorded, not audited now")
            continue
        differences(p, now[p["name"]], f"{where}[{p['name']!r}]", out)
    extra = len(set(now) - {p["name"] for p in old})
    if extra:
        out.append(f"{where}: {extra} people audited now were not in the record")


def _pairs(images) -> Counter:
    return Counter((im["person"], im["sha256"]) for im in images)


def _recorded_pairs(inputs: dict, attachments: dict[str, bytes]) -> Counter | None:
    images = inputs.get("images")
    if isinstance(images, list):
        return _pairs(images)
    body = attachments.get("photos.csv")
    if body is None:
        return None
    return _pairs(csv.DictReader(io.StringIO(body.decode("utf-8"))))


def compare_inputs(old: dict, new: dict, attachments: dict[str, bytes], one_person: str | None) -> list[str]:
    """The rerun's inputs against the recorded ones, by SHA-256."""
    out: list[str] = []
    a, b = old["inputs"], new["inputs"]
    if a["checkpoint"]["sha256"] != b["checkpoint"]["sha256"]:
        out.append(f"the model's checkpoint has SHA-256 {b['checkpoint']['sha256']}, the record "
                   f"{a['checkpoint']['sha256']}: not the model audited")
    for key in sorted(set(a) - INPUT_SKIP):
        differences(a[key], b.get(key), f"inputs.{key}", out)
    pairs_now = _pairs(b["images"])
    if one_person is not None:
        mine = _pairs(a.get("images", []))
        if Counter({k: v for k, v in pairs_now.items() if k[0] == one_person}) != mine:
            out.append(f"the photos of {one_person!r} are not the ones recorded (compared by SHA-256)")
        digest = (a.get("all_images") or {}).get("pairs_sha256")
        if digest and extracts.photo_set_digest(pairs_now.elements()) != digest:
            out.append("the audit's photos are not the ones recorded (the SHA-256 of the photo list differs)")
        return out
    recorded = _recorded_pairs(a, attachments)
    if recorded is not None and recorded != pairs_now:
        missing, extra = recorded - pairs_now, pairs_now - recorded
        out.append(f"the photos are not the ones recorded: {sum(missing.values())} recorded photos not found, "
                   f"{sum(extra.values())} photos not in the record (compared by SHA-256)")
    return out


def rerun_record(checked, model: str | None = None, people=None, reference=None, labels=None,
                 progress: bool = False) -> dict:
    """The attack run again from the carried manifest's settings, with the inputs where they are now; its record.
    Raises InputError when the report's record cannot be rerun."""
    from idia.attack.run import run_attack
    from idia.attack.settings import AttackSettings
    from idia.errors import InputError
    record, kind = checked.record, checked.kind
    if kind not in ("audit", "takedown"):
        raise InputError(f"--rerun reruns an attack: an audit or takedown report's (this is a {kind} report)")
    manifest = record["manifest"]
    if not manifest.get("settings"):
        raise InputError("the record predates recorded settings; rerun by hand: " + manifest.get("command", ""))
    if record.get("perturbation"):
        raise InputError("the attack ran through an inference-time perturbation the report does not carry; rerun "
                         "by hand: " + manifest.get("command", ""))
    changes = {k: v for k, v in (("model", model), ("people", people), ("reference", reference),
                                 ("labels", labels)) if v is not None}
    settings = AttackSettings.from_recorded(manifest["settings"], progress=progress, command="idia check --rerun",
                                            model_info=manifest.get("model_info"), **changes).validate()
    return run_attack(settings).result.to_dict()


def compare(checked, new: dict) -> list[str]:
    """Every difference between the carried record and a rerun's record `new` (see the module's docstring)."""
    record, kind = checked.record, checked.kind
    one = record["persons"][0]["name"] if kind == "takedown" else None
    out = compare_inputs(record["manifest"], new["manifest"], checked.attachments, one)
    if out:
        return out
    if one is not None:
        person = next((p for p in new["persons"] if p["name"] == one), None)
        if person is None:
            return [f"{one!r} is not among the people audited now"]
        others = {p["name"] for p in new["persons"] + new["reference"]} - {one}
        new = {**new, "persons": [extracts.withhold(person, others)], "reference": [],
               "distractors": extracts.person_distractors(new, person)}
    for key in COMPARED:
        if key in ("persons", "reference"):
            _compare_people(record.get(key) or [], new.get(key) or [], key, out)
        elif key in record:
            differences(record[key], new.get(key), key, out)
    differences({k: record["model"].get(k) for k in ("checkpoint_sha256", "config_sha256", "logit_scale")},
                new["model"], "model", out)
    return out


def identical_note(checked) -> str:
    n = len(checked.record["persons"])
    return (f"the rerun is identical: {n} {'person' if n == 1 else 'people'}, every verdict, vote and p-value the "
            f"same, other numbers within {TOLERANCE}")
