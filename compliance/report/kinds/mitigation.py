"""The mitigation report: a defense's `idia verify` record, for an ML team (identification of the redacted
people, their namesakes and everyone else before and after, utility, the probes, the relearning probe, the
training curve and a perturbation's trade-off)."""

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


def build(data: dict, request: Request) -> tuple[dict, list]:
    record = data["defense"].get("record") or {}
    losses = record.get("losses") or []
    sweep = data.get("sweep")
    rows = sweep["rows"] if sweep and sweep.get("rows") else None
    photos = data.get("photos") or {}
    return {
        "v": data,
        "settings_rows": _flatten(data["defense"].get("settings")),
        "input_rows": _flatten(data["manifest"].get("inputs")),
        "groups": [("redacted", "People asked to be forgotten (redacted)", data["redacted"]),
                   ("neighbours", "Namesakes of redacted people (share a first or last name)", data["neighbours"]),
                   ("collateral", "Everyone else audited (collateral)", data["collateral"])],
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
