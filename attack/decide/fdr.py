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
many of the flagged are expected to be false alarms, with the assumptions stated beside the figures.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import bdtr, bdtrc  # scipy.stats costs a second to import

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
    most 1. Conservative when the unknown people's p-values are conservative (ours are)."""
    p = np.asarray(p, dtype=np.float64)
    if not len(p):
        return 1.0
    return min(1.0, float((p > lam).sum()) / ((1 - lam) * len(p)))


def known_interval(p, lam: float = STOREY_LAMBDA, confidence: float = 0.95) -> tuple[int, int, int]:
    """(estimate, low, high) of how many of the m people the model knows, m1 = m - m0.

    #{p > lambda} counts unknown people, each above lambda with probability at least 1 - lambda, and (the
    assumption behind the estimate and the upper end) no known person. m0 ranges over the values for which that
    count is not in either 2.5% tail of Binomial(m0, 1 - lambda); the lower end of m1 needs only the first
    assumption and independence."""
    p = np.asarray(p, dtype=np.float64)
    m = len(p)
    above = int((p > lam).sum())
    estimate = max(0, m - min(m, math.ceil(above / (1 - lam))))
    tail = (1 - confidence) / 2
    m0 = np.arange(above, m + 1)
    at_least = bdtrc(above - 1, m0, 1 - lam) if above > 0 else np.ones(len(m0))
    keep = (bdtr(above, m0, 1 - lam) >= tail) & (at_least >= tail)
    if not keep.any():
        return estimate, estimate, estimate
    return estimate, int(m - m0[keep].max()), int(m - m0[keep].min())


def fdr_summary(p, flagged, threshold: float, level: dict) -> dict:
    """results.json's `fdr` block: how many were flagged, how many of those are expected to be false alarms,
    and how many of the audited people the model is estimated to know."""
    p = np.asarray(p, dtype=np.float64)
    m, r = len(p), int(np.sum(flagged))
    pi0 = storey_pi0(p)
    estimate, low, high = known_interval(p)
    return {
        "m": m, "flagged": r, "level": level, "threshold_p": threshold,
        "expected_false_discoveries": round(pi0 * m * threshold, 3),
        "expected_false_discoveries_at_most": round(m * threshold, 3),
        "expected_false_discoveries_how": ("each person the model does not know is flagged with probability at most "
                                           "the threshold p-value; about pi0 * m such people (Storey's pi0), at most "
                                           "m"),
        "pi0": round(pi0, 6), "pi0_lambda": STOREY_LAMBDA,
        "known_estimate": estimate, "known_interval95": [low, high],
        "known_how": (f"Storey's estimate: m minus #{{p > {STOREY_LAMBDA}}} / {1 - STOREY_LAMBDA}; the interval "
                      "inverts the binomial count of p-values above lambda, assuming the people the model knows have "
                      "p-values at or below lambda (the lower end does not need that)"),
    }
