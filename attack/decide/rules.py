"""The decide stage: embeddings → evidence (the paper's votes and the continuous score) → verdicts and p-values
under the chosen rule → metrics when ground truth is given."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from idia.attack.decide import calibrate
from idia.attack.decide.controls import evidence_blocks
from idia.attack.decide.evidence import Evidence, gather_evidence
from idia.attack.decide.metrics import membership_metrics
from idia.attack.decide.per_person import OthersSample
from idia.attack.decide.permutation import (
    ASSUMPTION,
    BREAKS_IF,
    P_VALUE_METHOD,
    PermutationTest,
    person_candidate_scores,
)
from idia.attack.inputs.question import PER_PERSON, Question
from idia.attack.settings import DEFAULT_TARGET_FPR
from idia.errors import InputError

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
    evidence_blocks: list[dict]  # per person: permutation test, paper rule, aliases, name prior, stability


def choose_rule(settings, has_reference: bool) -> tuple[str, int, float | None]:
    """(rule, tau, target_fpr). auto: paper when --tau is given, calibrated on the reference people when there
    are some, else the candidate-permutation test, which needs none."""
    rule = settings.rule
    if settings.tau is not None and settings.target_fpr is not None:
        raise InputError("give either --tau or --target-fpr, not both")
    if rule == "auto":
        rule = "paper" if settings.tau is not None else "calibrated" if has_reference else "permutation"
    if settings.target_fpr is not None and not has_reference:
        raise InputError("--target-fpr needs --reference (known non-members to calibrate on)")
    if rule == "calibrated" and not has_reference:
        raise InputError("--rule calibrated needs --reference (known non-members to calibrate on)")
    if settings.tau is not None and rule != "paper":
        raise InputError(f"--tau is the paper rule's threshold; it does not apply to --rule {rule}")
    if settings.target_fpr is not None and rule != "calibrated":
        raise InputError(f"--target-fpr is the calibrated rule's; it does not apply to --rule {rule}")
    if rule == "calibrated":
        target = settings.target_fpr if settings.target_fpr is not None else DEFAULT_TARGET_FPR
        return "calibrated-continuous", 1, target
    return rule, settings.tau if settings.tau is not None else 1, None


def decide(settings, rule: tuple[str, int, float | None], question: Question, image_emb: np.ndarray,
           owner: np.ndarray, texts: list[np.ndarray], logit_scale: float, is_reference: np.ndarray,
           labels_by_person: list[bool | None], own_similarity: np.ndarray | None = None,
           others: OthersSample | None = None) -> Decision:
    """Evidence for everyone at once, then the verdicts of the audited people under `rule` (from `choose_rule`).
    `texts` are the prompt embeddings of `question.text_lists()`, in that order."""
    per_person = question.mode == PER_PERSON
    ev = gather_evidence(image_emb, owner, question.true_index, texts if per_person else texts[0], logit_scale,
                         own_similarity=own_similarity if per_person else None,
                         group_of=question.group_of if per_person else None)
    rule, tau, target_fpr = rule  # choose_rule's, settled before anything was encoded
    n_prompts, n_cand = texts[0].shape[0], question.n_candidates
    blocks = evidence_blocks(ev.image_candidate_log_prob, ev.prediction, ev.owner, ev.true_index, settings.alpha,
                             tau, question.distractor_mask, question.alias_indices(), question.shared_names,
                             seed=settings.seed)
    if question.mode == PER_PERSON:  # no name was asked of others' photos in the attack itself: ask a sample
        own_scores = person_candidate_scores(ev.image_candidate_log_prob, ev.owner, len(blocks))
        for b, prior in zip(blocks, others.blocks(own_scores, settings.alpha) if others is not None else
                            [None] * len(blocks)):
            b["prior"] = prior
    permutation_p = np.array([b["aliases"]["p_value"] if b["aliases"] else b["permutation"]["p_value"]
                              for b in blocks], dtype=np.float64)
    calibration = None
    null_doc = {"null_scores": [float(x) for x in ev.mean_log_prob[is_reference]],
                "null_paper_scores": [int(x) for x in ev.score[is_reference]]}
    if rule == "calibrated-continuous":
        cal = calibrate.NullCalibration(target_fpr).fit(ev.mean_log_prob[is_reference])
        member = cal.predict(ev.mean_log_prob)
        p_values = cal.p_value(ev.mean_log_prob)
        calibration = {**cal.describe(), "statistic": "mean log-probability of the true name", **null_doc}
        p_method = "empirical over the reference people, on the continuous score"
    elif rule == "permutation":
        member = PermutationTest(settings.alpha).decide(permutation_p)
        p_values = permutation_p
        p_method = P_VALUE_METHOD + (" (with aliases: the exact max over the person's names)"
                                     if question.aliases else "")
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
        "decided_by": rule, "tau": tau, "target_fpr": target_fpr, "alpha": settings.alpha, "n_prompts": n_prompts,
        "n_candidates": n_cand, "candidate_set": question.mode, "max_images": settings.max_images,
        "p_value_method": p_method, "paper_rule": PAPER_RULE, "continuous_score": CONTINUOUS,
        "assumption": ASSUMPTION, "breaks_if": BREAKS_IF,
        "explanation": ("verdicts by the paper's rule (score >= tau)" if rule == "paper" else
                        PermutationTest(settings.alpha).describe()["explanation"] if rule == "permutation" else
                        f"verdicts by the continuous score, flagged when its empirical p-value over the reference "
                        f"people is at most {target_fpr}"),
    }
    return Decision(ev, member, p_values, rule_doc, calibration,
                    _metrics(ev, member, is_reference, labels_by_person), blocks)


def _metrics(ev: Evidence, member, is_reference, labels_by_person) -> dict | None:
    rows = np.array([i for i, lab in enumerate(labels_by_person) if lab is not None and not is_reference[i]],
                    dtype=np.int64)
    if not len(rows):
        return None
    y = np.array([labels_by_person[i] for i in rows])
    metrics = membership_metrics(y, member[rows], ev.mean_log_prob[rows], ev.score[rows])
    metrics["n_labelled"] = int(len(rows))
    return metrics
