"""The record's occurrence block: identification against how often people occur in the training data (the
paper's central figure), tallied here so that the audit report only draws what the record holds.

People are grouped by their count in bins a factor of about three apart (1-2, 3-9, 10-29, 30-99, ...); each bin
holds how many were audited, how many identified, the rate and its Clopper-Pearson 95% interval. People the
occurrence file does not list are one more group, shown apart.
"""

from __future__ import annotations

from idia.attack.decide.calibrate import clopper_pearson


def bin_edges(top: int) -> list[tuple[int, int]]:
    """(low, high) of each bin up to `top`: 0-0, 1-2, 3-9, 10-29, 30-99, 100-299, ..."""
    edges, low = [(0, 0)], 1
    while low <= max(top, 1):
        high = low * 3 - 1 if str(low).startswith("1") else low * 10 // 3 - 1
        edges.append((low, high))
        low = high + 1
    return edges


def _group(label: str, low: int | None, high: int | None, flags: list[bool]) -> dict:
    k, n = sum(flags), len(flags)
    lo, hi = clopper_pearson(k, n)
    return {"label": label, "low": low, "high": high, "n": n, "identified": k,
            "rate": k / n if n else None, "ci95": [lo, hi]}


def occurrence_block(persons, source: str, sha256: str | None) -> dict:
    """The block for results.json from the audited people's `occurrences` and verdicts."""
    listed = [p for p in persons if p.occurrences is not None]
    bins = []
    for low, high in bin_edges(max((p.occurrences for p in listed), default=0)):
        flags = [p.member for p in listed if low <= p.occurrences <= high]
        if flags:
            bins.append(_group(str(low) if low == high else f"{low}-{high}", low, high, flags))
    unlisted = [p.member for p in persons if p.occurrences is None]
    return {"source": source, "sha256": sha256, "n_listed": len(listed), "n_not_listed": len(unlisted),
            "bins": bins, "not_listed": _group("not listed", None, None, unlisted) if unlisted else None}
