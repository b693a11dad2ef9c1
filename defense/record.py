"""The verification record, `verification.json`: its kind and schema version, owned here so that readers (the
mitigation report, `idia check`) can name them without importing what makes one (torch, the attack).

verification.json:
  kind, schema_version, manifest
  defense     {kind: a registry family (redact|perturb), variant (text, image, text+image, noise, project),
              settings, record: {losses, checkpoint_sha256_before, checkpoint_sha256_after, seconds}, tuning: null,
              or with an image redaction how its defaults were chosen (`defense.tuning.face_tuning`: defaults,
              chosen_on_world_seeds, judged_on_world_seed, goal, chosen_on, held_out, recommendation)}
  decision    {judged_at, before: {rule, boundary, threshold, fixed}, after_recalibrated: {...}}: every "after"
              below is judged at the before attack's decision boundary (the rule's recorded boundary: paper tau,
              the p-value rules' p threshold (alpha, or BH's cut-off), the calibrated rule's null scores); the
              after model at its own boundary is `after_recalibrated`
  redacted    [{name, before, after, after_recalibrated}]  before/after: {score, member, p_value, mean_log_prob};
              after_recalibrated: {member, p_value}
  neighbours  [{name, shares: first|last, with, before, after, after_recalibrated}]  people who share a first or
              last name with a redacted person (with labels: members only)
  collateral  [{name, before, after, after_recalibrated}]  labelled members neither redacted nor neighbours
              (without labels: every audited person neither redacted nor a neighbour)
  nonmembers  [{name, before, after, after_recalibrated}]  labelled non-members (empty without labels): an
              identification after but not before is a false one the defense created
  summary     {redacted|neighbours|collateral|nonmembers: {n, identified_before, identified_after, rate_before,
              rate_after, newly_identified, identified_after_recalibrated}, utility: {task, n_images, n_classes,
              top1_before, top1_after, top1_before_ci95, top1_after_ci95, change, change_ci95, images_lost,
              images_gained, ci_method} or null without --utility}
  photos      null, or (when the defense trains on photos, or --unseen-photos) {rule, unlearn: {name: [{file,
              sha256}]}, verify: {...}}: every attack used only the verify photos
  probes      null or {rows: [{id, probe, redacted: {n, identified_before, identified_after, ...}, others: {n,
              identified_before, identified_after}, nonmembers: {...}, redacted_identified_after: [full names],
              dropped_as_ambiguous?}], heldout_templates}: the attack's templates, the held-out phrasings, and every
              name variant (first, last, initials, redacted or not), each after judged at its before's boundary
  relearning  null or {towers, data, lr, n_redacted, identified_after_defense, rows: [{steps,
              redacted_identified, came_back, identified, others_identified, n_others, checkpoint_sha256}]}
  probes_not_run  [{probe, why}]: every probe of a full verification this one did not run (unseen-photos,
              heldout, variant:<v>, relearning, utility)
  verdict     {forgotten, text, rule, probes_run, failed_probes, probes_not_run, per_person: [{name, forgotten,
              identified_by}]}: forgotten only when no probe run identifies any redacted person
  sweep       null or {kind, rows: [{strength, redacted_rate, others_rate, utility_top1}]}
  attack_before "before/results.json", attack_after "after/results.json", attack_after_recalibrated
              "after-recalibrated/results.json" or null (the same boundary: the after attack is that one)
  rule        the before attack's {decided_by, alpha, level, assumption, breaks_if}: what every verdict rests on

Every reader checks that a verification holds together (`check_verification_record`): the summary from the rows,
the linked files from their SHA-256, each row from the attacks it came from (after_recalibrated from the
recalibrated attack).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from idia.errors import InputError

KIND_VERIFICATION = "idia-verification"
SCHEMA_VERSION = 3  # 3: decision, nonmembers, intervals, probes_not_run, verdict


# --- does a verification hold together? ------------------------------------------------------------------------
# Nothing here imports torch: the mitigation report and `idia check` read verifications without it.

GROUPS = ("redacted", "neighbours", "collateral", "nonmembers")
SUMMARY_KEYS = ("score", "member", "p_value", "mean_log_prob")
RECALIBRATED_KEYS = ("member", "p_value")
RECALIBRATED = "attack_after_recalibrated"


def group_summary(rows: list[dict]) -> dict:
    """A section's counts and rates, from its rows (the one definition: the verification writes it, the check
    recomputes it). `newly_identified`: identified after (at the before boundary) but not before; with a
    recalibrated after in every row, how many it identifies."""
    n = len(rows)
    before = sum(r["before"]["member"] for r in rows)
    after = sum(r["after"]["member"] for r in rows)
    out = {"n": n, "identified_before": before, "identified_after": after,
           "rate_before": before / n if n else 0.0, "rate_after": after / n if n else 0.0,
           "newly_identified": sum(bool(r["after"]["member"] and not r["before"]["member"]) for r in rows)}
    if rows and all("after_recalibrated" in r for r in rows):
        out["identified_after_recalibrated"] = sum(r["after_recalibrated"]["member"] for r in rows)
    return out


def _groups(data: dict) -> tuple[str, ...]:
    """The sections a record holds: every group from schema 3 on; schemas 1 and 2 have no non-members."""
    return GROUPS if "nonmembers" in data else GROUPS[:3]


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
    for group in _groups(data):
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
        recalibrated = read(folder / data[RECALIBRATED]) if data.get(RECALIBRATED) else None
        _check_sections(data, before, after, recalibrated)


def _check_outputs(data: dict, folder: Path) -> None:
    from idia.io import sha256_file
    outputs = (data.get("manifest") or {}).get("outputs") or {}
    linked = [data.get(k) for k in ("attack_before", "attack_after", RECALIBRATED) if data.get(k)
              or k != RECALIBRATED]
    for name in linked:
        if name not in outputs:
            _fail("manifest.outputs", f"does not record the SHA-256 of {name}")
    for name, entry in outputs.items():
        path = folder / name
        if not isinstance(entry, dict) or "sha256" not in entry:
            continue
        if not path.is_file():
            if name in linked:
                raise InputError(f"{path}: missing; the verification's figures cannot be checked without the "
                                 "attacks it links")
            continue
        if sha256_file(path) != entry["sha256"]:
            _fail(f"manifest.outputs[{name!r}]", f"{path} is not the file this verification was written with "
                                                 "(SHA-256 differs)")


def _check_sections(data: dict, before: dict, after: dict, recalibrated: dict | None = None) -> None:
    b = {p["name"]: p for p in before["persons"]}
    a = {p["name"]: p for p in after["persons"]}
    r = {p["name"]: p for p in recalibrated["persons"]} if recalibrated is not None else None
    sides = [("before", b, SUMMARY_KEYS), ("after", a, SUMMARY_KEYS)]
    if r is not None:
        sides.append(("after_recalibrated", r, RECALIBRATED_KEYS))
    for group in _groups(data):
        for i, row in enumerate(data[group]):
            for side, people, keys in sides:
                person = people.get(row["name"])
                source = data[RECALIBRATED] if side == "after_recalibrated" else data["attack_" + side]
                if person is None:
                    _fail(f"{group}[{i}]", f"{row['name']!r} is not among the people of {source}")
                if side not in row or any(row[side].get(k) != person[k] for k in keys):
                    _fail(f"{group}[{i}].{side} ({row['name']!r})",
                          f"{_figures(row.get(side) or {}, keys)} but {source} holds {_figures(person, keys)}")
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
    if "nonmembers" not in data:  # schema 1 and 2: no non-member section
        return
    redacted = {r["name"] for r in data["redacted"]}
    nonmembers = {n for n, p in b.items() if labelled and p.get("label") is False} - redacted
    listed = {row["name"] for row in data["nonmembers"]}
    if listed != nonmembers:
        _fail("nonmembers", f"{len(listed)} people listed where the attacks give {len(nonmembers)} labelled "
                            "non-members")


def _figures(d: dict, keys: tuple = SUMMARY_KEYS) -> str:
    return ", ".join(f"{k} {d.get(k)}" for k in keys)
