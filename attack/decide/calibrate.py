"""Calibration: what a person who was NOT in the training data scores, and what follows for a verdict.

With reference people (known non-members, photographed and named like the audited ones) the null distribution
is measured: a person's p-value is the share of reference people scoring at least as high, with the +1
correction ((1 + #{reference >= s}) / (1 + n)), which is a valid p-value for a non-member exchangeable with the
reference people; flagging p <= alpha then keeps the false-positive rate at or below alpha.

Without reference people only a bound is possible, and its assumption is stated: a model that never saw a person
has no reason to prefer their name over any other candidate, so each prompt's vote lands on the true name with
probability at most 1/C; the expected score is at most P/C, and Markov's inequality gives
P(score >= s) <= P / (s * C) with no independence between prompts assumed.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import (
    betaincinv,  # the beta quantile; scipy.stats costs a second to import
)

from idia.errors import InputError

MARKOV_ASSUMPTION = ("a non-member's true name is exchangeable with the other candidates, so each prompt votes "
                     "for it with probability at most 1/C; Markov's inequality then bounds P(score >= s) by "
                     "P/(s*C) without assuming independent prompts")


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact binomial confidence interval for k successes in n trials."""
    if n <= 0:
        return (0.0, 1.0)
    a = 1.0 - confidence
    lo = 0.0 if k == 0 else float(betaincinv(k, n - k + 1, a / 2))
    hi = 1.0 if k == n else float(betaincinv(k + 1, n - k, 1 - a / 2))
    return (lo, hi)


def markov_p_value(score, n_prompts: int, n_candidates: int) -> np.ndarray:
    """Upper bound on P(score >= s) for a non-member (see the module docstring for the assumption)."""
    s = np.asarray(score, dtype=np.float64)
    with np.errstate(divide="ignore"):
        bound = np.where(s > 0, n_prompts / (np.maximum(s, 1e-12) * n_candidates), 1.0)
    return np.minimum(1.0, bound)


def empirical_p_value(null: np.ndarray, values) -> np.ndarray:
    """(1 + #{null >= v}) / (1 + n) for each value: higher values are more member-like."""
    null = np.sort(np.asarray(null, dtype=np.float64))
    v = np.asarray(values, dtype=np.float64)
    at_least = len(null) - np.searchsorted(null, v, side="left")
    return (1.0 + at_least) / (1.0 + len(null))


class NullCalibration:
    """Learn from known non-members the threshold that keeps false positives at or below `target_fpr`.

    scikit-learn manner: `__init__` stores parameters, `fit` learns `null_`, `threshold_`,
    `reference_false_positives_`, `reference_fpr_` and `reference_fpr_ci_`; `p_value` and `predict` use them."""

    def __init__(self, target_fpr: float = 0.05, confidence: float = 0.95):
        self.target_fpr = target_fpr
        self.confidence = confidence

    def fit(self, null_values) -> "NullCalibration":
        null = np.asarray(null_values, dtype=np.float64)
        null = null[np.isfinite(null)]
        n = len(null)
        if n == 0:
            raise InputError("the reference set holds no auditable person: cannot calibrate")
        if not 0 < self.target_fpr < 1:
            raise InputError(f"--target-fpr must lie strictly between 0 and 1, got {self.target_fpr}")
        allowed = math.floor(self.target_fpr * (n + 1) - 1 + 1e-9)  # reference people allowed at or above
        if allowed < 0:
            need = math.ceil(1 / self.target_fpr - 1)
            raise InputError(f"a target false-positive rate of {self.target_fpr} needs at least {need} reference "
                             f"people; the reference set has {n}")
        desc = np.sort(null)[::-1]
        self.null_ = np.sort(null)
        # Flag v only if fewer than allowed+1 reference values are >= v: v must exceed desc[allowed].
        self.threshold_ = float(desc[allowed]) if allowed < n else -math.inf
        self.reference_false_positives_ = int((null > self.threshold_).sum())
        self.n_reference_ = n
        self.reference_fpr_ = self.reference_false_positives_ / n
        self.reference_fpr_ci_ = clopper_pearson(self.reference_false_positives_, n, self.confidence)
        return self

    def p_value(self, values) -> np.ndarray:
        return empirical_p_value(self.null_, values)

    def predict(self, values) -> np.ndarray:
        v = np.asarray(values, dtype=np.float64)
        return np.isfinite(v) & (v > self.threshold_)

    def describe(self) -> dict:
        return {"target_fpr": self.target_fpr, "n_reference": self.n_reference_, "threshold": self.threshold_,
                "reference_false_positives": self.reference_false_positives_,
                "reference_fpr": self.reference_fpr_,
                "reference_fpr_ci95": list(self.reference_fpr_ci_),
                "p_value": "empirical: (1 + #{reference >= s}) / (1 + n_reference)"}
