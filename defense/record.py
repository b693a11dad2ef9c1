"""The verification record, `verification.json`: its kind and schema version, owned here so that readers (the
mitigation report, `idia check`) can name them without importing what makes one (torch, the attack).

verification.json:
  kind, schema_version, manifest
  defense     {kind: a registry family (redact|perturb), variant (text, image, text+image, noise, project),
              settings, record: {losses, checkpoint_sha256_before, checkpoint_sha256_after, seconds}}
  redacted    [{name, before, after}]               before/after: {score, member, p_value, mean_log_prob}
  neighbours  [{name, shares: first|last, with, before, after}]  people who share a first or last name with a
              redacted person (with labels: members only)
  collateral  [{name, before, after}]  labelled members neither redacted nor neighbours (without labels: every
              audited person neither redacted nor a neighbour)
  summary     {redacted|neighbours|collateral: {n, identified_before, identified_after, rate_before, rate_after},
              utility: {task, n_images, n_classes, top1_before, top1_after} or null without --utility}
  photos      null, or (when the defense trains on photos, or --unseen-photos) {rule, unlearn: {name: [{file,
              sha256}]}, verify: {...}}: every attack used only the verify photos
  probes      null or {rows: [{probe, redacted: {n, identified_before, identified_after, ...}, others: {n,
              identified_before, identified_after}, dropped_as_ambiguous?}], heldout_templates}: the attack's
              templates, the held-out phrasings, and each name variant
  relearning  null or {towers, data, lr, n_redacted, identified_after_defense, rows: [{steps,
              redacted_identified, came_back, others_identified, n_others, checkpoint_sha256}]}
  sweep       null or {kind, rows: [{strength, redacted_rate, others_rate, utility_top1}]}
  attack_before "before/results.json", attack_after "after/results.json"

Every reader checks that a verification holds together (`check_verification_record`): the summary from the rows,
the linked files from their SHA-256, each row from the attacks it came from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from idia.errors import InputError

KIND_VERIFICATION = "idia-verification"
SCHEMA_VERSION = 2


# --- does a verification hold together? ------------------------------------------------------------------------
# Nothing here imports torch: the mitigation report and `idia check` read verifications without it.

GROUPS = ("redacted", "neighbours", "collateral")
SUMMARY_KEYS = ("score", "member", "p_value", "mean_log_prob")


def group_summary(rows: list[dict]) -> dict:
    """A section's counts and rates, from its rows (the one definition: the verification writes it, the check
    recomputes it)."""
    n = len(rows)
    before = sum(r["before"]["member"] for r in rows)
    after = sum(r["after"]["member"] for r in rows)
    return {"n": n, "identified_before": before, "identified_after": after,
            "rate_before": before / n if n else 0.0, "rate_after": after / n if n else 0.0}


def _fail(where: str, problem: str):
    from idia.attack.record.check import Inconsistent
    raise Inconsistent(f"the verification does not hold together: {where}: {problem} (edited, or parts of two "
                       "runs)")


def check_verification_record(data: dict, folder: Path | None = None,
                              read: Callable[[Path], dict] | None = None) -> None:
    """The summary's counts follow from the sections' rows; with `folder` (where verification.json lies), every
    file it links is the one recorded (SHA-256), and each row's before and after figures are those of the person
    in before/ and after/results.json (read, and checked in turn, by `read`), the redacted section holding exactly
    the audited people whose names were to be redacted."""
    for group in GROUPS:
        derived = group_summary(data[group])
        recorded = (data.get("summary") or {}).get(group) or {}
        for key, value in derived.items():
            if key not in recorded or abs(float(recorded[key]) - value) > 1e-12:
                _fail(f"summary.{group}.{key}", f"{recorded.get(key)!r} but its {len(data[group])} rows give {value}")
    if folder is None:
        return
    _check_outputs(data, folder)
    if read is not None:
        before, after = (read(folder / data[k]) for k in ("attack_before", "attack_after"))
        _check_sections(data, before, after)


def _check_outputs(data: dict, folder: Path) -> None:
    from idia.io import sha256_file
    outputs = (data.get("manifest") or {}).get("outputs") or {}
    for key in ("attack_before", "attack_after"):
        if data.get(key) not in outputs:
            _fail("manifest.outputs", f"does not record the SHA-256 of {data.get(key)}")
    for name, entry in outputs.items():
        path = folder / name
        if not isinstance(entry, dict) or "sha256" not in entry:
            continue
        if not path.is_file():
            if name in (data["attack_before"], data["attack_after"]):
                raise InputError(f"{path}: missing; the verification's figures cannot be checked without the "
                                 "attacks it links")
            continue
        if sha256_file(path) != entry["sha256"]:
            _fail(f"manifest.outputs[{name!r}]", f"{path} is not the file this verification was written with "
                                                 "(SHA-256 differs)")


def _check_sections(data: dict, before: dict, after: dict) -> None:
    b = {p["name"]: p for p in before["persons"]}
    a = {p["name"]: p for p in after["persons"]}
    for group in GROUPS:
        for i, row in enumerate(data[group]):
            for side, people in (("before", b), ("after", a)):
                person = people.get(row["name"])
                if person is None:
                    _fail(f"{group}[{i}]", f"{row['name']!r} is not among the people of {data['attack_' + side]}")
                if any(row[side].get(k) != person[k] for k in SUMMARY_KEYS):
                    _fail(f"{group}[{i}].{side} ({row['name']!r})",
                          f"{_figures(row[side])} but {data['attack_' + side]} holds {_figures(person)}")
    names = ((data.get("manifest") or {}).get("inputs") or {}).get("names") or {}
    if isinstance(names, dict) and isinstance(names.get("names"), list):
        gone = {n.casefold() for n in names["names"]}
        wanted = sorted(n for n in b if n.casefold() in gone)
        if sorted(r["name"] for r in data["redacted"]) != wanted:
            _fail("redacted", f"lists {len(data['redacted'])} people, but {len(wanted)} audited people were to be "
                              "redacted")
    labelled = any(p.get("label") is not None for p in b.values())
    counted = {n for n, p in b.items() if (p.get("label") if labelled else True)}
    others = {r["name"] for g in ("neighbours", "collateral") for r in data[g]}
    expected = counted - {r["name"] for r in data["redacted"]}
    if others != expected:
        missing = sorted(expected - others) or sorted(others - expected)
        _fail("neighbours and collateral", f"{len(others)} people listed where the attacks give {len(expected)} "
                                           f"(e.g. {missing[0]!r})")


def _figures(d: dict) -> str:
    return ", ".join(f"{k} {d.get(k)}" for k in SUMMARY_KEYS)
