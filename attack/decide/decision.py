"""The decide stage: embeddings → evidence (the paper's votes and the continuous score) → verdicts and p-values
under the chosen rule (`attack.decide.rules`) and level → metrics when ground truth is given."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from idia.attack.decide.controls import evidence_blocks
from idia.attack.decide.evidence import Evidence, gather_evidence
from idia.attack.decide.levels import Level, choose_level
from idia.attack.decide.metrics import membership_metrics
from idia.attack.decide.per_person import OthersSample
from idia.attack.decide.permutation import person_candidate_scores
from idia.attack.decide.refine import agreement, fdr_power_note, namesakes, refine, summarise
from idia.attack.decide.rules import RULES, ChosenRule, RuleInputs, flag_at_level, levels_of
from idia.attack.inputs.question import PER_PERSON, Question

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
    evidence_blocks: list[dict]  # per person: permutation test, face side, paper rule, aliases, name prior, ...
    q_values: np.ndarray | None = None  # BH-adjusted p-values over the audited people (reference people: None)
    fdr: dict | None = None  # flagged, expected false discoveries, how many people the model is estimated to know
    agreement: dict | None = None  # every other rule's verdicts against the deciding rule's
    namesakes: list | None = None  # flagged people grouped with near-identical names
    notices: tuple[str, ...] = ()  # what the run's warnings should say about the decision


@dataclass
class Names:
    """What the refined evidence needs beyond the first pass: each person's name embedding averaged over the
    prompts [n_people, d] (None: taken from the shared list's text), and the further distractors' supply."""

    name_means: np.ndarray | None = None
    further: object | None = None  # attack.encode.further.FurtherNames, or None (no sequential extension)


def decide(settings, chosen: ChosenRule, question: Question, image_emb: np.ndarray, owner: np.ndarray,
           texts: list[np.ndarray], logit_scale: float, is_reference: np.ndarray,
           labels_by_person: list[bool | None], own_similarity: np.ndarray | None = None,
           others: OthersSample | None = None, names: Names | None = None) -> Decision:
    """Evidence for everyone at once, refined where the level needs it, then the verdicts of the audited people
    under the chosen rule and level. `texts` are the prompt embeddings of `question.text_lists()`, in order."""
    per_person = question.mode == PER_PERSON
    level = choose_level(settings.alpha, settings.fdr, int((~is_reference).sum()))
    ev = gather_evidence(image_emb, owner, question.true_index, texts if per_person else texts[0], logit_scale,
                         own_similarity=own_similarity if per_person else None,
                         group_of=question.group_of if per_person else None)
    blocks = _evidence_blocks(settings, chosen, question, ev, others, level)
    names = names or Names()
    name_means = names.name_means if names.name_means is not None else texts[0].mean(axis=0)[question.true_index]
    refined = refine(blocks, image_emb, owner, name_means, question.group_of if per_person else None, level,
                     settings.max_distractors, names.further, settings.seed)
    n_prompts, n_cand = texts[0].shape[0], question.n_candidates
    inputs = RuleInputs(ev, refined.name_p, is_reference, n_prompts, n_cand, level.per_person_alpha, chosen.tau,
                        chosen.target_fpr, bool(question.aliases), refined.face_p, settings.decision_boundary)
    verdicts = chosen.rule.decide(inputs)
    member, threshold = verdicts.member, None
    if chosen.rule.uses_level:
        member, threshold = flag_at_level(verdicts, level, ~is_reference, inputs.boundary)
    fdr, q = summarise(verdicts.p_values, member, threshold, level, is_reference)
    rule_doc = {
        "decided_by": chosen.rule.recorded, "tau": chosen.tau, "target_fpr": chosen.target_fpr,
        "alpha": level.alpha if level.kind == "per-person" or not chosen.rule.uses_level else None,
        "level": level.describe() if chosen.rule.uses_level else None,
        "n_prompts": n_prompts, "n_candidates": n_cand, "candidate_set": question.mode,
        "max_images": settings.max_images, "p_value_method": verdicts.p_value_method, "paper_rule": PAPER_RULE,
        "continuous_score": CONTINUOUS, "assumption": chosen.rule.assumption, "breaks_if": chosen.rule.breaks_if,
        "explanation": verdicts.explanation + (f" ({chosen.why})" if chosen.why else ""),
        "boundary": verdicts.boundary, "boundary_fixed": settings.decision_boundary is not None,
        "sequential": refined.describe(names.further),
        "cannot_flag": chosen.rule.check_levels(replace(
            levels_of(settings, chosen, question, n_prompts, int(is_reference.sum()), int((~is_reference).sum())),
            n_max_distractors=refined.n_max_distractors, n_faces=int((np.bincount(owner, minlength=len(blocks))
                                                                      > 0).sum()))),
    }
    groups = namesakes(member & ~is_reference, ev.image_candidate_log_prob, owner, question.true_index,
                       question.name_of, _candidate_text(question, texts), name_means, image_emb)
    power = fdr_power_note(level, verdicts.p_values, member, is_reference, refined) if chosen.rule.uses_level \
        else None
    if power:  # the audit report's findings say it beside the count
        fdr = {**fdr, "why_none_flagged": power}
    return Decision(ev, member, verdicts.p_values, rule_doc, verdicts.calibration,
                    _metrics(ev, member, is_reference, labels_by_person), blocks, q, fdr,
                    _agreement(chosen, inputs, level, member, is_reference, settings), groups,
                    (power,) if power else ())


def _candidate_text(question: Question, texts: list[np.ndarray]):
    """candidate_text(person, index): a candidate's embedding averaged over the prompts, from the text the
    question encoded (the person's group's list, or the shared list)."""
    def text(person: int, index: int) -> np.ndarray:
        g = 0 if question.mode != PER_PERSON or question.group_of is None else int(question.group_of[person])
        return texts[g][:, index].mean(axis=0)
    return text


def _agreement(chosen: ChosenRule, inputs: RuleInputs, level: Level, member, is_reference, settings) -> dict:
    """Every rule that can run here, at its own level (p-value rules at the deciding level), against the
    deciding rule's verdicts: the report's secondary table."""
    rows = {}
    for rule in RULES.kinds():
        if rule.needs_reference and not is_reference.any():
            continue
        if rule is chosen.rule:
            rows[rule.recorded] = (member, _level_words(rule, level, chosen))
            continue
        tau = chosen.tau if rule.name == "paper" else 1
        target = settings.calibration_target_fpr
        v = rule.decide(RuleInputs(inputs.evidence, inputs.permutation_p, is_reference, inputs.n_prompts,
                                   inputs.n_candidates, inputs.alpha, tau, target, inputs.with_aliases,
                                   inputs.face_p))
        flagged = level.decide(v.p_values, ~is_reference)[0] if rule.uses_level else v.member
        rows[rule.recorded] = (flagged, _level_words(rule, level, ChosenRule(rule, tau, target)))
    return agreement(rows, chosen.rule.recorded, is_reference)


def _level_words(rule, level: Level, chosen: ChosenRule) -> str:
    if rule.uses_level:
        return f"FDR q = {level.q}" if level.kind == "fdr" else f"alpha = {level.per_person_alpha}"
    return f"tau = {chosen.tau}" if rule.name == "paper" else f"target FPR = {chosen.target_fpr}"


def _evidence_blocks(settings, chosen: ChosenRule, question: Question, ev: Evidence,
                     others: OthersSample | None, level: Level) -> list[dict]:
    """Each person's evidence block; in the per-person question, whose attack asks no name of others' photos,
    the name-prior control comes from a sample of others' photos instead. Controls report at the per-person
    level (alpha, or its default under an FDR level)."""
    alpha = level.per_person_alpha
    blocks = evidence_blocks(ev.image_candidate_log_prob, ev.prediction, ev.owner, ev.true_index, alpha,
                             chosen.tau, question.distractor_mask, question.alias_indices(), question.shared_names,
                             seed=settings.seed, name_of=question.name_of)
    if question.mode == PER_PERSON:
        own_scores = person_candidate_scores(ev.image_candidate_log_prob, ev.owner, len(blocks))
        priors = others.blocks(own_scores, alpha) if others is not None else [None] * len(blocks)
        for block, prior in zip(blocks, priors):
            block["prior"] = prior
    return blocks


def _metrics(ev: Evidence, member, is_reference, labels_by_person) -> dict | None:
    rows = np.array([i for i, lab in enumerate(labels_by_person) if lab is not None and not is_reference[i]],
                    dtype=np.int64)
    if not len(rows):
        return None
    y = np.array([labels_by_person[i] for i in rows])
    metrics = membership_metrics(y, member[rows], ev.mean_log_prob[rows], ev.score[rows])
    metrics["n_labelled"] = int(len(rows))
    return metrics
