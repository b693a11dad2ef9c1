"""How a verification judges: the groups compared before and after, the probes that were and were not run, and
the one verdict.

Plain functions (the attack's person records in, dicts out): `verify` runs the attacks, this reads them.

* Groups: the redacted people, their name neighbours (namesakes), the other members (collateral) and, with
  labels, the non-members, whose new identifications after a defense are false ones the defense created.
* Every "after" is judged at the boundary the "before" was judged at (`attack.decide.rules`: each rule records
  it and honours it), so a defense cannot pass by moving the threshold; the model after the defense judged by its
  own recalibrated boundary is kept beside it (`after_recalibrated`).
* The verdict: "forgotten" only when every redacted person is at or below the "before" threshold (not identified)
  in every probe that was run: the attack's templates on photos the defense never saw, held-out phrasings, every
  name variant, and each relearning snapshot. A probe not run is listed with why, and the verdict says it holds
  only for the probes that were.
"""

from __future__ import annotations

from typing import Sequence

from idia.defense.record import group_summary
from idia.defense.redact import find_neighbours

PROBE_TEMPLATES = "templates"
PROBE_UNSEEN = "unseen-photos"
PROBE_HELDOUT = "heldout"
PROBE_RELEARNING = "relearning"
PROBE_UTILITY = "utility"


def variant_probe(variant: str) -> str:
    return f"variant:{variant}"


def person_summary(p) -> dict:
    return {"score": p.score, "member": p.member, "p_value": p.p_value, "mean_log_prob": p.mean_log_prob}


def compare(before, after, names: Sequence[str], recalibrated=None) -> dict:
    """The redacted, neighbours, collateral and non-member sections and their summaries, from attacks on the same
    people (`before`, `after` at the before boundary, and optionally `recalibrated`: after at its own)."""
    b = {p.name: p for p in before.result.persons}
    a = {p.name: p for p in after.result.persons}
    r = {p.name: p for p in recalibrated.result.persons} if recalibrated is not None else None
    gone = {n.casefold() for n in names}

    def pair(name: str) -> dict:
        out = {"before": person_summary(b[name]), "after": person_summary(a[name])}
        if r is not None:
            out["after_recalibrated"] = {"member": r[name].member, "p_value": r[name].p_value}
        return out

    labelled = any(p.label is not None for p in b.values())
    counted = [n for n, p in b.items() if (p.label if labelled else True)]  # members, or everyone without labels
    redacted = [{"name": n, **pair(n)} for n in b if n.casefold() in gone]
    neighbours = [{"name": nb.name, "shares": nb.shares, "with": nb.with_, **pair(nb.name)}
                  for nb in find_neighbours(list(names), counted)]
    near = {nb["name"] for nb in neighbours}
    collateral = [{"name": n, **pair(n)} for n in counted if n.casefold() not in gone and n not in near]
    nonmembers = [{"name": n, **pair(n)} for n, p in b.items() if labelled and p.label is False
                  and n.casefold() not in gone]
    return {"redacted": redacted, "neighbours": neighbours, "collateral": collateral, "nonmembers": nonmembers,
            "summary": {"redacted": group_summary(redacted), "neighbours": group_summary(neighbours),
                        "collateral": group_summary(collateral), "nonmembers": group_summary(nonmembers)}}


def boundary_of(run) -> dict:
    """What a run was judged at: its rule, the boundary it records, and the threshold where it calibrated one."""
    rule = run.result.rule
    return {"rule": rule["decided_by"], "boundary": rule.get("boundary"),
            "threshold": (run.result.calibration or {}).get("threshold"), "fixed": bool(rule.get("boundary_fixed"))}


def not_run(cfg, chain: Sequence[type], split: bool, relearnable: bool, variants: Sequence[str]) -> list[dict]:
    """Every probe of the full verification that this one did not run, and why."""
    out = []
    if not split and any(d.needs_photos for d in chain):
        out.append({"probe": PROBE_UNSEEN, "why": "--all-photos: the attacks used photos the defense trained on"})
    if not cfg.probes:
        out.append({"probe": PROBE_HELDOUT, "why": "--no-probes"})
        out += [{"probe": variant_probe(v), "why": "--no-probes"} for v in variants]
    if not cfg.relearn_steps:
        out.append({"probe": PROBE_RELEARNING, "why": "no relearning step counts given (--relearn '')"})
    elif not relearnable:
        out.append({"probe": PROBE_RELEARNING, "why": "the defense changes no weights (an inference-time "
                                                       "perturbation has nothing to relearn)"})
    if cfg.utility is None:
        out.append({"probe": PROBE_UTILITY, "why": "no --utility folder: what the defense costs ordinary use is "
                                                   "not measured"})
    return out


def verdict(names: Sequence[str], identified: dict[str, list[str]], not_run_rows: list[dict]) -> dict:
    """The one pass/fail: `identified` maps each probe run to the redacted people (their full names) it still
    identifies at the before boundary; forgotten only when every list is empty."""
    redacted = list(names)
    per_person = [{"name": n, "identified_by": [probe for probe, who in identified.items() if n in who]}
                  for n in redacted]
    for row in per_person:
        row["forgotten"] = not row["identified_by"]
    failed = [probe for probe, who in identified.items() if who]
    forgotten = not failed
    skipped = [r["probe"] for r in not_run_rows if r["probe"] != PROBE_UTILITY]
    if forgotten:
        text = (f"forgotten: none of the {len(redacted)} redacted people is identified by any of the "
                f"{len(identified)} probes run")
        if skipped:
            text += f" (not run, so not shown: {', '.join(skipped)})"
    else:
        text = (f"not forgotten: {sum(not r['forgotten'] for r in per_person)} of {len(redacted)} redacted people "
                f"are still identified, by {', '.join(failed)}")
    return {"forgotten": forgotten, "text": text,
            "rule": "every redacted person at or below the before threshold (not identified) in every probe run",
            "probes_run": list(identified), "failed_probes": failed, "probes_not_run": skipped,
            "per_person": per_person}
