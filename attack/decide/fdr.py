"""Decisions about many people at once: the false-discovery rate, q-values, and how many people the model knows.

A per-person test at alpha = 0.01 over 50,000 people the model never saw flags about 500 of them; the audit's list
of "identified" people is then mostly false alarms. Benjamini and Hochberg's step-up procedure (J. R. Stat. Soc. B,
1995) flags the k people with the smallest p-values, k the largest with p_(k) <= k q / m, which keeps the expected
share of false alarms among the flagged at or below q m0 / m <= q, for independent p-values and for positively
dependent ones (PRDS; Benjamini and Yekutieli 2001). Ours share their distractors and their face bank, a positive
dependence. A person's q-value is the smallest q at which BH would flag them.

Storey's adaptive variant (divide q by an estimate of the share of unknown people) is not used for the verdicts:
its finite-sample guarantee needs independence, which shared distractors do not give. Its estimate of that share,
pi0 = #{p > lambda} / ((1 - lambda) m), is used only to estimate how many audited people the model knows and how
many of the flagged are expected to be false alarms (conservative: it overestimates them), with the assumptions
stated beside the figures. How many people the model knows is bounded from below by counting p-values at or
below a few thresholds (`known_bound`), which stays valid when the p-values of unknown people are conservative.
"""

from __future__ import annotations

import numpy as np
from scipy.special import bdtr  # scipy.stats costs a second to import

FDR_METHOD = ("Benjamini-Hochberg step-up over the audited people's p-values: flag the k smallest, k the largest "
              "with p_(k) <= k q / m")
STOREY_LAMBDA = 0.5


def q_values(p) -> np.ndarray:
    """BH-adjusted p-values: q_(i) = min over j >= i of m p_(j) / j, capped at 1 (ties get the same q)."""
    p = np.asarray(p, dtype=np.float64)
    m = len(p)
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, m + 1)
    q_sorted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(q_sorted, 1.0)
    return out


def benjamini_hochberg(p, q: float) -> tuple[np.ndarray, float]:
    """(flagged, threshold): flagged people and the largest p-value flagged (0 when nobody is)."""
    p = np.asarray(p, dtype=np.float64)
    m = len(p)
    if m == 0:
        return np.zeros(0, dtype=bool), 0.0
    sorted_p = np.sort(p)
    # p_(k) <= k q / m, with a relative 1e-12 so that p exactly at the line (0.01 = 29 * 0.01 / 29) is flagged
    # whatever the rounding of k q / m
    ok = np.flatnonzero(sorted_p * m <= q * np.arange(1, m + 1) * (1 + 1e-12))
    if not len(ok):
        return np.zeros(m, dtype=bool), 0.0
    threshold = float(sorted_p[ok[-1]])
    return p <= threshold, threshold


def storey_pi0(p, lam: float = STOREY_LAMBDA) -> float:
    """Storey's estimate of the share of people the model does not know: #{p > lambda} / ((1 - lambda) m), at
    most 1. Too high when the unknown people's p-values are conservative (ours are): the false alarms it expects
    are then overestimated, the safe side."""
    p = np.asarray(p, dtype=np.float64)
    if not len(p):
        return 1.0
    return min(1.0, float((p > lam).sum()) / ((1 - lam) * len(p)))


KNOWN_GRID = (0.0001, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5)  # thresholds the lower bound is taken over


def known_bound(p, confidence: float = 0.95, grid=KNOWN_GRID) -> tuple[int, int, float]:
    """(estimate, at least, t) for how many of the m people the model knows, m1 = m - m0.

    At any threshold t, the people the model does not know are each at or below t with probability at most t, so
    their count there is at most a Binomial(m, t) draw (m0 <= m; conservative p-values only lower it): m1 is at
    least #{p <= t} minus that binomial's upper quantile. The bound is taken at every t of `grid` with the
    confidence split among them (Bonferroni), so the largest is a lower bound at `confidence` whatever t it came
    from. It needs no assumption about the known people's p-values, which is why it holds where Storey's count
    above lambda does not: our p-values of unknown people are conservative (the larger of two), which inflates
    that count and drove Storey's estimate of m1 to 0 at 10,000 people. The estimate, (#{p <= t} - m t) / (1 - t)
    at the t that gave the bound, assumes the known people are at or below t; it is never below the bound."""
    p = np.asarray(p, dtype=np.float64)
    m = len(p)
    if not m:
        return 0, 0, float(grid[0])
    tail = (1 - confidence) / len(grid)
    k = np.arange(m + 1)
    best = None
    for t in grid:
        below = int((p <= t).sum())
        upper = int(np.searchsorted(bdtr(k, m, t), 1 - tail))  # smallest k with P(Binomial(m, t) <= k) >= 1 - tail
        low = max(0, below - upper)
        if best is None or low > best[1]:
            best = (min(m, max(low, round((below - m * t) / (1 - t)))), low, float(t))
    return best


def fdr_summary(p, flagged, threshold: float, level: dict) -> dict:
    """results.json's `fdr` block: how many were flagged, how many of those are expected to be false alarms,
    and how many of the audited people the model is estimated to know."""
    p = np.asarray(p, dtype=np.float64)
    m, r = len(p), int(np.sum(flagged))
    pi0 = storey_pi0(p)
    estimate, low, t = known_bound(p)
    return {
        "m": m, "flagged": r, "level": level, "threshold_p": threshold,
        "expected_false_discoveries": round(pi0 * m * threshold, 3),
        "expected_false_discoveries_at_most": round(m * threshold, 3),
        "expected_false_discoveries_how": ("each person the model does not know is flagged with probability at most "
                                           "the threshold p-value; about pi0 * m such people (Storey's pi0), at most "
                                           "m"),
        "pi0": round(pi0, 6), "pi0_lambda": STOREY_LAMBDA,
        "known_estimate": estimate, "known_at_least95": low, "known_threshold": t,
        "known_how": (f"at least: the count of p-values at or below t = {t:g} less the most that "
                      f"{m} people the model does not know would put there (the binomial's upper quantile, at 95% "
                      f"over {len(KNOWN_GRID)} thresholds); about: that count less {m} t, over 1 - t, which assumes "
                      "the people the model knows are at or below t. No upper bound is given: people the test is "
                      "too weak to flag look like people the model does not know"),
    }
