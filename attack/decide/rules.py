"""The decide stage: embeddings → evidence (the paper's votes and the continuous score) → verdicts and p-values
under the chosen rule → metrics when ground truth is given."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from idia.attack.decide import calibrate
from idia.errors import InputError
from idia.attack.decide.evidence import Evidence, gather_evidence
from idia.attack.decide.controls import evidence_blocks
from idia.attack.decide.metrics import membership_metrics
from idia.attack.decide.permutation import (ASSUMPTION, BREAKS_IF, P_VALUE_METHOD, PermutationTest,
                                            person_candidate_scores)
from idia.attack.inputs.question import PER_PERSON, Question
from idia.attack.settings import DEFAULT_TARGET_FPR

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


def own_name_similarity(encoder, templates, person_names, image_emb, owner, perturbation=None,
                        block: int = 2048, prior: "OthersSample | None" = None) -> np.ndarray:
    """[n_images, n_prompts] cosine of each photo with its own person's name in every prompt, for the
    per-person question. People are taken in blocks, so text memory is bounded and each block is cached.
    With `prior`, each block's names are also asked of a fixed sample of other people's photos (the name-prior
    control, which the per-person question would otherwise never ask)."""
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
        if prior is not None:
            prior.add_block(s, text)
    return out


class OthersSample:
    """The name-prior control for the per-person question: every audited name asked of the same seeded sample of
    photos (never the person's own), among that person's distractors (their group's list).

    Within one photo and prompt all candidates share the softmax's denominator, so comparing two candidates'
    mean log-probabilities is comparing their mean logits: the ranks (and so the p-values) need only mean logits,
    and each group's distractors' are computed once for the whole group."""

    def __init__(self, image_emb, owner, distractor_texts, logit_scale: float, n_people: int,
                 group_of: np.ndarray | None = None, size: int = 256, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.rows = np.sort(rng.choice(len(image_emb), size=min(size, len(image_emb)), replace=False))
        self.owner = owner[self.rows]
        self.images = image_emb[self.rows]
        self.scale = logit_scale
        self.group_of = np.zeros(n_people, np.int64) if group_of is None else np.asarray(group_of, np.int64)
        lse, top, row_mean = [], [], []
        for text in distractor_texts:  # [P, D, d] per group
            n_prompts, n_d, _ = text.shape
            d_logits = logit_scale * (self.images @ text.reshape(n_prompts * n_d, -1).T).reshape(
                len(self.rows), n_prompts, n_d)  # [K, P, D]
            lse.append(np.logaddexp.reduce(d_logits.astype(np.float64), axis=2))  # [K, P]
            top.append(d_logits.max(axis=2))
            row_mean.append(d_logits.mean(axis=1).astype(np.float64))  # [K, D] mean over prompts
        self.lse_d, self.max_d = np.stack(lse), np.stack(top)  # [G, K, P]
        self.d_row_mean = np.stack(row_mean)  # [G, K, D]
        self.d_sum = self.d_row_mean.sum(axis=1)  # [G, D]
        self.pick = np.full(n_people, np.nan)
        self.mean_lp = np.full(n_people, np.nan)
        self.mean_logit = np.full(n_people, np.nan)
        self.n_d = n_d

    def add_block(self, start: int, text) -> None:
        x = self.scale * np.einsum("pbd,kd->kpb", text, self.images)  # [K, P, B]
        people = start + np.arange(x.shape[2])
        valid = (self.owner[:, None] != people[None, :])[:, None, :]  # [K, 1, B]
        count = valid.sum(axis=(0, 1)) * x.shape[1]
        groups = self.group_of[people]
        for g in np.unique(groups):
            cols = groups == g
            xg, vg = x[:, :, cols], valid[:, :, cols]
            lp = xg - np.logaddexp(self.lse_d[g][:, :, None], xg)
            with np.errstate(invalid="ignore", divide="ignore"):
                self.pick[people[cols]] = ((xg > self.max_d[g][:, :, None]) & vg).sum(axis=(0, 1)) / count[cols]
                self.mean_lp[people[cols]] = np.where(vg, lp, 0).sum(axis=(0, 1)) / count[cols]
                self.mean_logit[people[cols]] = np.where(vg, xg, 0).sum(axis=(0, 1)) / count[cols]

    def distractor_means(self, person: int) -> np.ndarray:
        """[D] the person's distractors' mean logits on the sample without this person's own photos."""
        g = self.group_of[person]
        own = self.owner == person
        if not own.any():
            return self.d_sum[g] / len(self.rows)
        return (self.d_sum[g] - self.d_row_mean[g][own].sum(axis=0)) / max(1, len(self.rows) - int(own.sum()))

    def blocks(self, own_scores: np.ndarray, alpha: float) -> list[dict]:
        """Each person's `prior` block; own_scores [n_people, D + 1] their mean log-probabilities on their own
        photos (distractors, then their own name)."""
        out = []
        for i in range(len(self.pick)):
            d_means = self.distractor_means(i)
            x = self.mean_logit[i]
            p_others = (1 + np.sum(d_means >= x)) / (1 + self.n_d)
            own = own_scores[i]
            corrected = own[:-1] - d_means
            p_corrected = (1 + np.sum(corrected >= own[-1] - x)) / (1 + self.n_d)
            out.append({"pick_rate_others": _r(self.pick[i]), "mean_score_others": _r(self.mean_lp[i]),
                        "p_value_others": _r(p_others, 8), "prior_alone_flags": bool(p_others <= alpha),
                        "corrected_score": _r(own[-1] - self.mean_lp[i]), "corrected_p_value": _r(p_corrected, 8),
                        "sample": f"{len(self.rows)} photos drawn at random from everyone's (never the person's own)"})
        return out


def _r(x, digits: int = 6):
    x = float(x)
    return round(x, digits) if np.isfinite(x) else None


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
