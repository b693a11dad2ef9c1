"""The reports' figures: drawn with matplotlib from numbers the record holds, returned as PNG `data:` URIs.

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot, no global backend switch) at fixed
sizes, with PNG metadata left out, so the same record gives the same bytes. matplotlib is imported when a figure
is drawn, not with this module. Nothing here computes a statistic:
the histogram bins and draws the scores that are in the record, the curves join the points that are in it.

Scale: the figures are PNGs (rasterised), so their size does not grow with the number of people; a histogram is
binned once with numpy (`np.histogram`) and drawn as 40 bars, whatever the number of scores.
"""

from __future__ import annotations

import base64
import contextlib
import io
import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

WIDTH_IN, HEIGHT_IN, DPI = 6.8, 3.0, 150
RC = {"svg.hashsalt": "idia", "font.family": "DejaVu Sans", "font.size": 8, "axes.titlesize": 9,
      "axes.spines.top": False, "axes.spines.right": False, "legend.frameon": False}
AUDITED, REFERENCE, OTHERS, UTILITY, GREY = "#b03a2e", "#2e6fb0", "#7d5ba6", "#2e8b57", "#777777"
# The attack writes -1e30 for a person whose true name had probability 0 (an infinite log); such a value is not
# a point on the axis and is counted in the caption instead.
NOT_FINITE = -1e29


@contextlib.contextmanager
def _style():
    import matplotlib  # here, not at the top: only a report with figures pays for it
    with matplotlib.rc_context(RC):
        yield


def _png_uri(fig: Figure) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    buf = io.BytesIO()
    FigureCanvasAgg(fig)
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(ncols: int = 1, height: float = HEIGHT_IN) -> tuple[Figure, list]:
    from matplotlib.figure import Figure
    fig = Figure(figsize=(WIDTH_IN, height), layout="constrained")
    axes = fig.subplots(1, ncols)
    return fig, list(axes) if ncols > 1 else [axes]


def _plottable(values) -> np.ndarray:
    """The finite scores above NOT_FINITE, as a float array (None counts as not finite)."""
    a = np.array([np.nan if v is None else v for v in values], dtype=float) if not isinstance(values, np.ndarray) \
        else values.astype(float)
    return a[np.isfinite(a) & (a > NOT_FINITE)]


def score_distribution(audited, reference, threshold: float | None) -> str:
    """Histogram of the continuous score: audited people against reference non-members, on shared bins."""
    with _style():
        fig, (ax,) = _figure()
        a = _plottable(audited)
        r = _plottable(reference if reference is not None else [])
        if a.size or r.size:
            both = np.concatenate([a, r])
            lo, hi = float(both.min()), float(both.max())
            if hi - lo < 1e-9:
                lo, hi = lo - 0.5, hi + 0.5
            bins = np.linspace(lo, hi, 41)
            for values, color, label in ((a, AUDITED, f"audited people ({a.size})"),
                                         (r, REFERENCE, f"reference people, known never seen ({r.size})")):
                if values.size:
                    counts, _ = np.histogram(values, bins=bins)
                    ax.stairs(counts, bins, fill=True, color=color, alpha=0.55, label=label)
        if threshold is not None and math.isfinite(threshold):
            ax.axvline(threshold, color="black", linestyle="--", linewidth=1, label="decision threshold")
        ax.set_xlabel("continuous score: mean log-probability of the true name (right = named more confidently)")
        ax.set_ylabel("people")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left")
        return _png_uri(fig)


def roc_curve(fpr: list[float], tpr: list[float], auc: float) -> str:
    """The ROC curve from the record's points, on a linear and on a logarithmic false-positive axis."""
    with _style():
        fig, (lin, log) = _figure(ncols=2)
        for ax in (lin, log):
            ax.plot(fpr, tpr, color=AUDITED, linewidth=1.5, label=f"attack (AUC {auc:.3f})")
            ax.set_xlabel("false-positive rate (non-members flagged)")
            ax.set_ylabel("true-positive rate (members found)")
            ax.set_ylim(-0.02, 1.02)
        lin.plot([0, 1], [0, 1], color=GREY, linestyle=":", linewidth=1, label="guessing")
        lin.set_xlim(-0.02, 1.02)
        lin.set_title("ROC curve")
        lin.legend(loc="lower right")
        positive = [x for x in fpr if x > 0]
        left = min(positive) / 2 if positive else 1e-3
        log.set_xscale("log")
        log.set_xlim(min(left, 1e-3), 1.0)
        log.set_title("the same, low false-positive rates enlarged")
        return _png_uri(fig)


def training_curve(losses: list[dict]) -> str:
    """The defense's losses per step, as recorded."""
    with _style():
        fig, (ax,) = _figure()
        steps = [row["step"] for row in losses]
        for key, color in (("total", "black"), ("redaction", AUDITED), ("utility", UTILITY), ("drift", REFERENCE)):
            ax.plot(steps, [row[key] for row in losses], color=color, linewidth=1.2, label=key,
                    marker="o" if len(steps) < 30 else None, markersize=2.5)
        ax.set_xlabel("training step")
        ax.set_ylabel("loss")
        ax.legend(loc="upper right", ncols=4)
        return _png_uri(fig)


def sweep(rows: list[dict], kind: str) -> str:
    """The perturbation trade-off: identification of redacted and other people, and utility, per strength."""
    with _style():
        fig, (ax,) = _figure()
        rows = sorted(rows, key=lambda r: r["strength"])
        x = [r["strength"] for r in rows]
        ax.plot(x, [r["redacted_rate"] for r in rows], color=AUDITED, marker="o", markersize=3,
                label="redacted people still identified")
        ax.plot(x, [r["others_rate"] for r in rows], color=OTHERS, marker="s", markersize=3,
                label="other people identified")
        ax.plot(x, [r["utility_top1"] for r in rows], color=UTILITY, marker="^", markersize=3,
                label="utility: top-1 accuracy")
        ax.set_xlabel(f"defense strength ({kind})")
        ax.set_ylabel("rate")
        ax.set_ylim(-0.03, 1.03)
        ax.legend(loc="center right")
        return _png_uri(fig)


def tradeoff(rows: list[dict], kind: str) -> str:
    """The trade-off itself: redacted people still identified against the others identified (left) and against
    utility (right), one point per strength, labelled with it."""
    with _style():
        fig, axes = _figure(2)
        rows = sorted(rows, key=lambda r: r["strength"])
        pairs = [("others_rate", "other people identified", OTHERS),
                 ("utility_top1", "utility: top-1 accuracy", UTILITY)]
        for ax, (key, label, colour) in zip(axes, pairs):
            pts = [(r[key], r["redacted_rate"], r["strength"]) for r in rows if r.get(key) is not None]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], color=colour, marker="o", markersize=3)
            for x, y, strength in pts:
                ax.annotate(f"{strength:g}", (x, y), textcoords="offset points", xytext=(3, 3), fontsize=6)
            ax.set_xlabel(label)
            ax.set_ylabel("redacted people still identified")
            ax.set_xlim(-0.03, 1.03)
            ax.set_ylim(-0.03, 1.03)
        fig.suptitle(f"trade-off by strength ({kind}); best is bottom right")
        return _png_uri(fig)


def occurrences(bins: list[dict], not_listed: dict | None = None) -> str:
    """Identification rate against occurrences in the training data, per bin of the record's occurrence block,
    with its 95% interval and the number of people in it; the people the occurrence file did not list apart."""
    with _style():
        fig, (ax,) = _figure()
        groups = list(bins) + ([not_listed] if not_listed else [])
        x = np.arange(len(groups), dtype=float)
        rates = np.array([g["rate"] if g["rate"] is not None else np.nan for g in groups], dtype=float)
        lo = np.array([g["ci95"][0] for g in groups], dtype=float)
        hi = np.array([g["ci95"][1] for g in groups], dtype=float)
        colours = [AUDITED] * len(bins) + ([GREY] if not_listed else [])
        ax.errorbar(x, rates, yerr=[np.clip(rates - lo, 0, None), np.clip(hi - rates, 0, None)], fmt="none",
                    ecolor=GREY, elinewidth=1, capsize=3)
        ax.scatter(x, rates, color=colours, s=22, zorder=3)
        if len(bins) > 1:
            ax.plot(x[:len(bins)], rates[:len(bins)], color=AUDITED, linewidth=1)
        for xi, g in zip(x, groups):
            ax.annotate(f"n={g['n']}", (xi, 1.03), ha="center", fontsize=6, color=GREY)
        ax.set_xticks(x, [g["label"] for g in groups])
        ax.set_xlabel("captions naming the person in the training data")
        ax.set_ylabel("share identified")
        ax.set_ylim(-0.03, 1.09)
        return _png_uri(fig)
