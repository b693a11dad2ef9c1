"""How the reports write numbers: rounded, in words a lawyer reads without decoding (no e-notation), the same
on the page (as jinja filters) and in the page-one facts that `idia check` recomputes. A leaf: imports nothing of
ours."""

from __future__ import annotations


def fixed(x, digits: int = 3) -> str:
    return "n/a" if x is None else f"{float(x):.{digits}f}"


def pct(x, digits: int = 1) -> str:
    return "n/a" if x is None else f"{100 * float(x):.{digits}f}%"


def pval(p) -> str:
    """Two significant digits, without e-notation a lawyer would have to decode."""
    if p is None:
        return "n/a"
    p = float(p)
    if p >= 0.01:
        return f"{p:.2f}".rstrip("0").rstrip(".") if p < 1 else "1"
    mantissa, exponent = f"{p:.1e}".split("e")
    return f"{mantissa} × 10^{int(exponent)}" if p < 1e-4 else f"{p:.2g}"


def ci(pair, as_pct: bool = True) -> str:
    if not pair:
        return "n/a"
    fmt = pct if as_pct else fixed
    return f"{fmt(pair[0])} to {fmt(pair[1])}"


def seconds(s) -> str:
    """A duration as a person reads it: 0.42 s, 12.3 s, 4 min 5 s, 2 h 3 min."""
    if s is None:
        return "n/a"
    s = float(s)
    if s < 10:
        return f"{s:.2f} s"
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{int(s // 60)} min {int(s % 60)} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60)} min"


def ordinal(n) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 21st: a rank as a lawyer reads it."""
    n = int(n)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n:,}{suffix}"


def count(n) -> str:
    return f"{int(n):,}"
