"""How well verdicts match the truth, when the truth is known (the synthetic world, a labelled benchmark)."""

from __future__ import annotations

import numpy as np

from idia.attack.decide.calibrate import clopper_pearson

METHOD = ("scikit-learn: confusion_matrix, accuracy_score, precision_score (zero_division=0) on the verdicts; "
          "roc_auc_score and roc_curve on the continuous score; TPR at a FPR level is the highest TPR on the ROC "
          "curve whose FPR does not exceed that level, reported only with at least 1/level non-members (null: not "
          "measurable); "
          "rates carry Clopper-Pearson 95% intervals")


def tpr_at_fpr(y_true, score, level: float) -> float:
    from sklearn.metrics import (
        roc_curve,  # imported when truth is known: an audit without labels never pays for it
    )
    fpr, tpr, _ = roc_curve(y_true, score)
    ok = fpr <= level + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def measurable(n_negatives: int, level: float) -> bool:
    """A true-positive rate at false-positive rate `level` needs at least 1 / level people known not to be members:
    with fewer, the smallest non-zero FPR the data can show is above the level."""
    return n_negatives >= round(1 / level)


def tpr_at_measurable_fpr(y_true, score, level: float) -> float | None:
    """`tpr_at_fpr`, or None where the non-members are too few to show that level (`measurable`)."""
    return tpr_at_fpr(y_true, score, level) if measurable(int((~np.asarray(y_true, bool)).sum()), level) else None


def membership_metrics(y_true, verdict, continuous, discrete=None) -> dict:
    """TPR, FPR, accuracy, precision of the verdicts; ROC AUC and TPR at low FPR of the scores."""
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        precision_score,
        roc_auc_score,
        roc_curve,
    )
    y = np.asarray(y_true, dtype=bool)
    v = np.asarray(verdict, dtype=bool)
    c = np.nan_to_num(np.asarray(continuous, dtype=np.float64), nan=-np.inf, neginf=-1e9)
    tn, fp, fn, tp = confusion_matrix(y, v, labels=[False, True]).ravel()
    out = {
        "n_members": int(y.sum()), "n_nonmembers": int((~y).sum()),
        "true_positives": int(tp), "false_positives": int(fp), "true_negatives": int(tn), "false_negatives": int(fn),
        "tpr": tp / max(tp + fn, 1), "tpr_ci95": list(clopper_pearson(int(tp), int(tp + fn))),
        "fpr": fp / max(fp + tn, 1), "fpr_ci95": list(clopper_pearson(int(fp), int(fp + tn))),
        "accuracy": float(accuracy_score(y, v)),
        "precision": float(precision_score(y, v, zero_division=0)),
        "method": METHOD,
    }
    if y.all() or (~y).all():
        out["roc"] = None
        return out
    fpr, tpr, _ = roc_curve(y, c)
    out["roc"] = {
        "score": "mean log-probability of the true name",
        "auc": float(roc_auc_score(y, c)),
        "tpr_at_1pct_fpr": tpr_at_measurable_fpr(y, c, 0.01),
        "tpr_at_0.1pct_fpr": tpr_at_measurable_fpr(y, c, 0.001),  # None: not measurable with these non-members
        "fpr": [float(x) for x in fpr], "tpr": [float(x) for x in tpr],
    }
    if discrete is not None:
        d = np.asarray(discrete, dtype=np.float64)
        out["roc_paper_score"] = {"score": "paper's score (prompts voting the true name)",
                                  "auc": float(roc_auc_score(y, d)),
                                  "tpr_at_1pct_fpr": tpr_at_measurable_fpr(y, d, 0.01),
                                  "tpr_at_0.1pct_fpr": tpr_at_measurable_fpr(y, d, 0.001)}
    return out
