"""The mitigation report: a defense's `idia verify` record, for an ML team (the one verdict, identification of
the redacted people, their namesakes, everyone else and the non-members before and after, utility with its
interval, the probes and those not run, the relearning probe, the training curve and a perturbation's
trade-off). Records of schema 1 and 2 carry no verdict, non-members, intervals or probes-not-run: those parts are
left out for them."""

from __future__ import annotations

from idia.compliance.report import plots
from idia.compliance.report.kinds import ReportKind, Request, register
from idia.compliance.report.schema import VERIFICATION_RECORD

LONG_LIST = 8


def _flatten(d, prefix: str = "") -> list[tuple[str, object]]:
    """Nested settings as (dotted key, value) rows, in the record's order; a long list is named, not spelled out."""
    rows: list[tuple[str, object]] = []
    for key, value in (d or {}).items():
        if isinstance(value, dict) and value:
            rows += _flatten(value, f"{prefix}{key}.")
        elif isinstance(value, list) and len(value) > LONG_LIST:
            rows.append((f"{prefix}{key}", f"{len(value)} entries, listed in the record"))
        else:
            rows.append((f"{prefix}{key}", value))
    return rows


def _redacted_forms(settings: dict | None) -> str | None:
    """The name forms the defense also redacted (`variants`, of any stage of a chain), as given."""
    found = [v for k, v in _flatten(settings) if k.split(".")[-1] == "variants" and v]
    return ", ".join(dict.fromkeys(x if isinstance(x, str) else ",".join(x) for x in found)) or None


def _tuning_rows(tuning: dict | None) -> list[dict]:
    """The seeds an image redaction's defaults were chosen on, then the one they were judged on, as table rows."""
    if not tuning:
        return []
    seeds = [(seed, "chosen on", row) for seed, row in (tuning.get("chosen_on") or {}).items()]
    if tuning.get("held_out"):
        seeds.append((tuning["judged_on_world_seed"], "judged on (never used for choosing)", tuning["held_out"]))
    out = []
    for seed, role, row in seeds:
        (rb, ra, rn), (ob, oa, on), (ub, ua) = row["redacted"], row["others"], row["utility"]
        out.append({"seed": seed, "role": role, "redacted": f"{rb} → {ra} of {rn}",
                    "others": f"{ob} → {oa} of {on} ({100 * (oa - ob) / on:+.1f} points)",
                    "nonmembers": f"{row['nonmembers_new'][0]} of {row['nonmembers_new'][1]}",
                    "utility": f"{100 * ub:.1f}% → {100 * ua:.1f}%", "meets_goal": row["meets_goal"]})
    return out


def build(data: dict, request: Request) -> tuple[dict, list]:
    record = data["defense"].get("record") or {}
    losses = record.get("losses") or []
    sweep = data.get("sweep")
    rows = sweep["rows"] if sweep and sweep.get("rows") else None
    photos = data.get("photos") or {}
    summary = data["summary"]
    nonmembers = [r for r in data.get("nonmembers") or [] if r["before"]["member"] or r["after"]["member"]]
    groups = [("redacted", "People asked to be forgotten (redacted)", data["redacted"]),
              ("neighbours", "Namesakes of redacted people (share a first or last name)", data["neighbours"]),
              ("collateral", "Everyone else audited (collateral)", data["collateral"])]
    if "nonmembers" in summary:
        groups.append(("nonmembers", "Non-members (the model never saw them): identified before or after",
                       nonmembers))
    return {
        "v": data,
        "verdict": data.get("verdict"),
        "redacted_forms": _redacted_forms(data["defense"].get("settings")),
        "decision": data.get("decision"),
        "not_run": data.get("probes_not_run") or [],
        "nonmembers": summary.get("nonmembers"),
        "recalibrated": any("identified_after_recalibrated" in summary[k] for k, _, _ in groups),
        "utility_ci": bool(summary.get("utility") and "change_ci95" in summary["utility"]),
        "settings_rows": _flatten(data["defense"].get("settings")),
        "tuning": data["defense"].get("tuning"),
        "tuning_rows": _tuning_rows(data["defense"].get("tuning")),
        "input_rows": _flatten(data["manifest"].get("inputs")),
        "groups": groups,
        "losses_plot": plots.training_curve(losses) if losses else None,
        "sweep_plot": plots.sweep(rows, sweep.get("kind", "")) if rows else None,
        "tradeoff_plot": plots.tradeoff(rows, sweep.get("kind", "")) if rows else None,
        "probes": (data.get("probes") or {}).get("rows") or [],
        "relearning": data.get("relearning"),
        "photos": data.get("photos"),
        "n_verify_photos": sum(len(v) for v in (photos.get("verify") or {}).values()),
        "n_unlearn_photos": sum(len(v) for v in (photos.get("unlearn") or {}).values()),
    }, []


register(ReportKind("mitigation", "Mitigation verification", VERIFICATION_RECORD, build))
