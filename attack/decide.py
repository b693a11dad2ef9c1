"""The decide stage: embeddings → evidence (the paper's votes and the continuous score) → verdicts and p-values
under the chosen rule → metrics when ground truth is given."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import calibrate
from .errors import InputError
from .idia import Evidence, gather_evidence
from .metrics import membership_metrics
from .question import PER_PERSON, Question
from .settings import DEFAULT_TARGET_FPR

PAPER_RULE = ("per image and prompt the argmax name; per prompt the majority over the person's images "
              "(a tie gives no vote); score = prompts voting the true name; member if score >= tau")
CONTINUOUS = "mean over images and prompts of log softmax(logit_scale * cosine) of the true name"


@dataclass
class Decision:
    evidence: Evidence
    member: np.ndarray
    p_values: np.ndarray
    rule: dict
    calibration: dict | None
    metrics: dict | None


def choose_rule(settings, has_reference: bool) -> tuple[str, int, float | None]:
    """(rule, tau, target_fpr): calibrated on the reference people when there are some, else the paper's."""
    if settings.tau is not None and settings.target_fpr is not None:
        raise InputError("give either --tau or --target-fpr, not both")
    if settings.target_fpr is not None and not has_reference:
        raise InputError("--target-fpr needs --reference (known non-members to calibrate on)")
    if has_reference and settings.tau is None:
        target = settings.target_fpr if settings.target_fpr is not None else DEFAULT_TARGET_FPR
        return "calibrated-continuous", 1, target
    return "paper", settings.tau if settings.tau is not None else 1, None


def own_name_similarity(encoder, templates, person_names, image_emb, owner, perturbation=None,
                        block: int = 2048) -> np.ndarray:
    """[n_images, n_prompts] cosine of each photo with its own person's name in every prompt, for the
    per-person question. People are taken in blocks, so text memory is bounded and each block is cached."""
    out = np.empty((len(image_emb), len(templates)), dtype=np.float32)
    starts = np.searchsorted(owner, np.arange(0, len(person_names) + 1))  # owner is grouped by person
    for s in range(0, len(person_names), block):
        e = min(s + block, len(person_names))
        text = encoder.prompt_embeddings(templates, person_names[s:e])  # [P, B, d]
        if perturbation is not None:
            text = perturbation.transform_text(text)
        rows = slice(starts[s], starts[e])
        mine = text[:, owner[rows] - s, :]  # [P, n_rows, d]
        out[rows] = np.einsum("pnd,nd->np", mine, image_emb[rows])
    return out


def decide(settings, question: Question, image_emb: np.ndarray, owner: np.ndarray, text_emb: np.ndarray,
           logit_scale: float, is_reference: np.ndarray, labels_by_person: list[bool | None],
           own_similarity: np.ndarray | None = None) -> Decision:
    """Evidence for everyone at once, then the verdicts of the audited people under the chosen rule."""
    ev = gather_evidence(image_emb, owner, question.true_index, text_emb, logit_scale,
                         own_similarity=own_similarity if question.mode == PER_PERSON else None)
    rule, tau, target_fpr = choose_rule(settings, bool(is_reference.any()))
    n_prompts, n_cand = text_emb.shape[0], question.n_candidates
    calibration = None
    null_doc = {"null_scores": [float(x) for x in ev.mean_log_prob[is_reference]],
                "null_paper_scores": [int(x) for x in ev.score[is_reference]]}
    if rule == "calibrated-continuous":
        cal = calibrate.NullCalibration(target_fpr).fit(ev.mean_log_prob[is_reference])
        member = cal.predict(ev.mean_log_prob)
        p_values = cal.p_value(ev.mean_log_prob)
        calibration = {**cal.describe(), "statistic": "mean log-probability of the true name", **null_doc}
        p_method = "empirical over the reference people, on the continuous score"
    else:
        member = ev.score >= tau
        if is_reference.any():
            p_values = calibrate.empirical_p_value(ev.score[is_reference], ev.score)
            k = int((ev.score[is_reference] >= tau).sum())
            n = int(is_reference.sum())
            calibration = {"target_fpr": None, "n_reference": n, "threshold": tau, "statistic": "paper score",
                           "reference_false_positives": k, "reference_fpr": k / n,
                           "reference_fpr_ci95": list(calibrate.clopper_pearson(k, n)),
                           "p_value": "empirical: (1 + #{reference >= s}) / (1 + n_reference)", **null_doc}
            p_method = "empirical over the reference people, on the paper's score"
        else:
            p_values = calibrate.markov_p_value(ev.score, n_prompts, n_cand)
            p_method = f"analytic bound (no reference people): {calibrate.MARKOV_ASSUMPTION}"
    rule_doc = {
        "decided_by": rule, "tau": tau, "target_fpr": target_fpr, "n_prompts": n_prompts,
        "n_candidates": n_cand, "candidate_set": question.mode, "max_images": settings.max_images,
        "p_value_method": p_method, "paper_rule": PAPER_RULE, "continuous_score": CONTINUOUS,
        "explanation": ("verdicts by the paper's rule (score >= tau)" if rule == "paper" else
                        f"verdicts by the continuous score, flagged when its empirical p-value over the reference "
                        f"people is at most {target_fpr}"),
    }
    return Decision(ev, member, p_values, rule_doc, calibration,
                    _metrics(ev, member, is_reference, labels_by_person))


def _metrics(ev: Evidence, member, is_reference, labels_by_person) -> dict | None:
    rows = np.array([i for i, lab in enumerate(labels_by_person) if lab is not None and not is_reference[i]],
                    dtype=np.int64)
    if not len(rows):
        return None
    y = np.array([labels_by_person[i] for i in rows])
    metrics = membership_metrics(y, member[rows], ev.mean_log_prob[rows], ev.score[rows])
    metrics["n_labelled"] = int(len(rows))
    return metrics
