"""The decide stage: embeddings → evidence (the paper's votes and the continuous score) → verdicts and p-values
under the chosen rule → metrics when ground truth is given.

A rule is a `Rule` in the RULES registry. Beside `decide` (verdicts and p-values from the evidence) each rule
says two things from what a record holds, so that nothing it decided has to be taken on trust:

  check_levels(levels)  before any model loads: None when the rule can flag someone at these settings, else why
                        not (a warning the record and the report carry); an InputError for settings it cannot
                        run at all (too few reference people to calibrate)
  rederive(record)      its verdicts and p-values (and calibration block) recomputed from the per-person
                        statistics a results.json holds: what `attack.record.check` compares the record with.
                        The default builds `RuleInputs` from the record and calls `decide`; a rule whose decision
                        rests on more than the paper score, the continuous score and the permutation (or alias)
                        p-value must override it, reading that from the record (and the record must hold it).

A rule's decision boundary. Every rule returns, in `Verdicts.boundary`, the parameters that decide another run
exactly as this one decided, without refitting on that run's data (paper: tau; permutation: the per-person
level; calibrated: the reference people's null scores the threshold and p-values come from), and honours
`RuleInputs.boundary` (the settings' `decision_boundary`) by deciding with it instead of fitting its own. A
verification judges the model after a defense at the boundary the model before it was judged at, whatever the
rule; a new rule provides both (a rule whose boundary depends on the data, e.g. a level chosen across people,
records the level it arrived at)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

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
    smallest_p_value,
)
from idia.attack.inputs.question import PER_PERSON, Question
from idia.errors import InputError
from idia.registry import Registry

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


@dataclass
class RuleInputs:
    """What a rule may read: the evidence of everyone asked, each person's permutation p-value (aliases taken
    into account), who is a reference person, and the levels the settings give."""

    evidence: Evidence
    permutation_p: np.ndarray
    is_reference: np.ndarray
    n_prompts: int
    n_candidates: int
    alpha: float
    tau: int
    target_fpr: float | None
    with_aliases: bool
    boundary: dict | None = None  # an earlier run's Verdicts.boundary, applied as it is (None: the rule's own)


@dataclass
class Verdicts:
    member: np.ndarray
    p_values: np.ndarray
    p_value_method: str
    explanation: str
    calibration: dict | None = None
    boundary: dict = field(default_factory=dict)  # what decides another run as this one (see the module doc)


@dataclass(frozen=True)
class Levels:
    """What decides whether a rule can flag anyone at all, known before any model loads."""

    n_prompts: int
    n_distractors: int  # the made-up distractors each person's name is ranked among
    n_reference: int  # auditable reference people
    alpha: float
    tau: int
    target_fpr: float | None


@dataclass
class RecordedStatistics:
    """The per-person statistics a results.json holds, where a rule reads `Evidence` (re-derivation)."""

    score: np.ndarray
    mean_log_prob: np.ndarray


class Rule:
    """A decision rule (see the module's docstring for what each method owes the record)."""

    name = recorded = ""
    needs_reference = False

    def decide(self, inputs: RuleInputs) -> Verdicts:
        raise NotImplementedError

    def check_levels(self, levels: Levels) -> str | None:
        return None

    def rederive(self, record: dict) -> Verdicts:
        return self.decide(inputs_from_record(record))


def _everyone(record: dict) -> list[dict]:
    return list(record["persons"]) + list(record.get("reference") or [])


def _permutation_p(person: dict) -> float:
    ev = person.get("evidence") or {}
    block = ev.get("aliases") or ev.get("permutation") or {}
    p = block.get("p_value")
    return float(p) if isinstance(p, (int, float)) else float("nan")


def inputs_from_record(record: dict) -> RuleInputs:
    """What `decide` read, rebuilt from a results.json: audited people, then reference people (and the boundary
    the run was decided at, when it was given one rather than fitting its own)."""
    people, rule = _everyone(record), record["rule"]
    n_audited = len(record["persons"])
    stats = RecordedStatistics(np.array([p["score"] for p in people], dtype=np.int64),
                               np.array([p["mean_log_prob"] for p in people], dtype=np.float64))
    return RuleInputs(stats, np.array([_permutation_p(p) for p in people], dtype=np.float64),
                      np.arange(len(people)) >= n_audited, int(rule["n_prompts"]), int(rule["n_candidates"]),
                      float(rule["alpha"]), int(rule["tau"]) if rule.get("tau") is not None else 1,
                      rule.get("target_fpr"), any((p.get("evidence") or {}).get("aliases") for p in people),
                      rule.get("boundary") if rule.get("boundary_fixed") else None)


def levels_from_record(record: dict) -> Levels:
    rule = record["rule"]
    n_dist = [((p.get("evidence") or {}).get("permutation") or {}).get("n_distractors") for p in _everyone(record)]
    n_dist = [n for n in n_dist if isinstance(n, int)]
    return Levels(int(rule["n_prompts"]), min(n_dist) if n_dist else int(rule["n_candidates"]) - 1,
                  len(record.get("reference") or []), float(rule["alpha"]),
                  int(rule["tau"]) if rule.get("tau") is not None else 1, rule.get("target_fpr"))


def _null_scores(inputs: RuleInputs) -> dict:
    ev, ref = inputs.evidence, inputs.is_reference
    return {"null_scores": [float(x) for x in ev.mean_log_prob[ref]],
            "null_paper_scores": [int(x) for x in ev.score[ref]]}


class PaperRule(Rule):
    """Hintersdorf et al.'s rule: member when at least tau prompts' majority votes name the person. Its p-value
    is empirical over reference people when there are some, else Markov's bound."""

    name = recorded = "paper"
    needs_reference = False

    def check_levels(self, levels: Levels) -> str | None:
        if levels.tau > levels.n_prompts:
            return (f"tau {levels.tau} is more than the {levels.n_prompts} prompts: no score can reach it, so nobody "
                    f"can be identified whatever the model knows; use --tau {levels.n_prompts} or less")
        return None

    def decide(self, inputs: RuleInputs) -> Verdicts:
        ev, ref = inputs.evidence, inputs.is_reference
        tau = inputs.boundary["tau"] if inputs.boundary else inputs.tau
        member = ev.score >= tau
        explanation = "verdicts by the paper's rule (score >= tau)"
        if not ref.any():
            return Verdicts(member, calibrate.markov_p_value(ev.score, inputs.n_prompts, inputs.n_candidates),
                            f"analytic bound (no reference people): {calibrate.MARKOV_ASSUMPTION}", explanation,
                            boundary={"tau": tau})
        k, n = int((ev.score[ref] >= tau).sum()), int(ref.sum())
        calibration = {"target_fpr": None, "n_reference": n, "threshold": tau, "statistic": "paper score",
                       "reference_false_positives": k, "reference_fpr": k / n,
                       "reference_fpr_ci95": list(calibrate.clopper_pearson(k, n)),
                       "p_value": "empirical: (1 + #{reference >= s}) / (1 + n_reference)", **_null_scores(inputs)}
        return Verdicts(member, calibrate.empirical_p_value(ev.score[ref], ev.score),
                        "empirical over the reference people, on the paper's score", explanation, calibration,
                        {"tau": tau})


class PermutationRule(Rule):
    """The candidate-permutation test: flagged when the true name outranks enough made-up distractors
    (`idia.attack.decide.permutation`); needs no reference people."""

    name = recorded = "permutation"
    needs_reference = False

    def check_levels(self, levels: Levels) -> str | None:
        floor = smallest_p_value(levels.n_distractors)
        if floor <= levels.alpha:
            return None
        need = math.ceil(1 / levels.alpha - 1 - 1e-9)
        return (f"with {levels.n_distractors} made-up distractors the smallest p-value the permutation test can "
                f"give is 1/{levels.n_distractors + 1} = {floor:.4g}, above alpha {levels.alpha}: nobody can be "
                f"identified whatever the model knows; give at least {need} distractors (--n-candidates) or a "
                f"larger --alpha")

    def decide(self, inputs: RuleInputs) -> Verdicts:
        alpha = inputs.boundary["alpha"] if inputs.boundary else inputs.alpha
        test = PermutationTest(alpha)
        method = P_VALUE_METHOD + (" (with aliases: the exact max over the person's names)"
                                   if inputs.with_aliases else "")
        return Verdicts(test.decide(inputs.permutation_p), inputs.permutation_p, method,
                        test.describe()["explanation"], boundary={"alpha": alpha})


class CalibratedRule(Rule):
    """The continuous score calibrated on reference people (known non-members) at a target false-positive rate."""

    name = "calibrated"
    recorded = "calibrated-continuous"
    needs_reference = True

    def check_levels(self, levels: Levels) -> str | None:
        """Too few reference people for the target cannot be calibrated at all: refused before any model runs."""
        target = levels.target_fpr
        if target is not None and levels.n_reference and target * (levels.n_reference + 1) < 1 - 1e-9:
            need = math.ceil(1 / target - 1 - 1e-9)
            raise InputError(f"a target false-positive rate of {target} needs at least {need} reference people; "
                             f"the reference set has {levels.n_reference}")
        return None

    def decide(self, inputs: RuleInputs) -> Verdicts:
        ev, fixed = inputs.evidence, inputs.boundary
        target_fpr = fixed["target_fpr"] if fixed else inputs.target_fpr
        null = fixed["null"] if fixed else [float(x) for x in ev.mean_log_prob[inputs.is_reference]]
        cal = calibrate.NullCalibration(target_fpr).fit(null)
        calibration = {**cal.describe(), "statistic": "mean log-probability of the true name", **_null_scores(inputs),
                       "null_from": "an earlier run (a fixed boundary)" if fixed else "this run's reference people"}
        return Verdicts(cal.predict(ev.mean_log_prob), cal.p_value(ev.mean_log_prob),
                        "empirical over the reference people, on the continuous score",
                        f"verdicts by the continuous score, flagged when its empirical p-value over the reference "
                        f"people is at most {target_fpr}", calibration, {"target_fpr": target_fpr, "null": null})


RULES: Registry[Rule] = Registry("--rule", order=lambda rule: rule.name)
for _rule in (PaperRule, PermutationRule, CalibratedRule):
    RULES.register(_rule())


def recorded_rule(decided_by) -> Rule:
    """The rule a record names in `rule.decided_by` (its `recorded` name), or an InputError."""
    for rule in RULES:
        if rule.recorded == decided_by:
            return rule
    raise InputError(f"the record's rule {decided_by!r} is not one idia knows "
                     f"({', '.join(r.recorded for r in RULES)})")


def rule_names() -> tuple[str, ...]:
    """`--rule` choices: auto, then every registered rule."""
    return ("auto",) + RULES.names()


@dataclass(frozen=True)
class ChosenRule:
    """The rule that decides, and its levels: settled before anything is encoded."""

    rule: object  # one of RULES
    tau: int
    target_fpr: float | None


def choose_rule(settings, has_reference: bool) -> ChosenRule:
    """auto: paper when --tau is given, calibrated on the reference people when there are some, else the
    candidate-permutation test, which needs none. A setting that belongs to another rule is refused."""
    name = settings.rule
    if settings.tau is not None and settings.target_fpr is not None:
        raise InputError("give either --tau or --target-fpr, not both")
    if name == "auto":
        name = "paper" if settings.tau is not None else "calibrated" if has_reference else "permutation"
    rule = RULES.get(name)
    if settings.target_fpr is not None and not has_reference:
        raise InputError("--target-fpr needs --reference (known non-members to calibrate on)")
    if rule.needs_reference and not has_reference:
        raise InputError(f"--rule {name} needs --reference (known non-members to calibrate on)")
    if settings.tau is not None and name != "paper":
        raise InputError(f"--tau is the paper rule's threshold; it does not apply to --rule {name}")
    if settings.target_fpr is not None and name != "calibrated":
        raise InputError(f"--target-fpr is the calibrated rule's; it does not apply to --rule {name}")
    if name == "calibrated":
        return ChosenRule(rule, 1, settings.calibration_target_fpr)
    return ChosenRule(rule, settings.tau if settings.tau is not None else 1, None)


def levels_of(settings, chosen: ChosenRule, question: Question, n_prompts: int, n_reference: int) -> Levels:
    """The levels an attack runs at, from its settings and question (no model needed)."""
    return Levels(n_prompts, int(np.asarray(question.distractor_mask).sum()), n_reference, settings.alpha,
                  chosen.tau, chosen.target_fpr)


def decide(settings, chosen: ChosenRule, question: Question, image_emb: np.ndarray, owner: np.ndarray,
           texts: list[np.ndarray], logit_scale: float, is_reference: np.ndarray,
           labels_by_person: list[bool | None], own_similarity: np.ndarray | None = None,
           others: OthersSample | None = None) -> Decision:
    """Evidence for everyone at once, then the verdicts of the audited people under the chosen rule.
    `texts` are the prompt embeddings of `question.text_lists()`, in that order."""
    per_person = question.mode == PER_PERSON
    ev = gather_evidence(image_emb, owner, question.true_index, texts if per_person else texts[0], logit_scale,
                         own_similarity=own_similarity if per_person else None,
                         group_of=question.group_of if per_person else None)
    blocks = _evidence_blocks(settings, chosen, question, ev, others)
    permutation_p = np.array([b["aliases"]["p_value"] if b["aliases"] else b["permutation"]["p_value"]
                              for b in blocks], dtype=np.float64)
    n_prompts, n_cand = texts[0].shape[0], question.n_candidates
    verdicts = chosen.rule.decide(RuleInputs(ev, permutation_p, is_reference, n_prompts, n_cand, settings.alpha,
                                             chosen.tau, chosen.target_fpr, bool(question.aliases),
                                             settings.decision_boundary))
    rule_doc = {
        "decided_by": chosen.rule.recorded, "tau": chosen.tau, "target_fpr": chosen.target_fpr,
        "alpha": settings.alpha, "n_prompts": n_prompts, "n_candidates": n_cand, "candidate_set": question.mode,
        "max_images": settings.max_images, "p_value_method": verdicts.p_value_method, "paper_rule": PAPER_RULE,
        "continuous_score": CONTINUOUS, "assumption": ASSUMPTION, "breaks_if": BREAKS_IF,
        "explanation": verdicts.explanation, "boundary": verdicts.boundary,
        "boundary_fixed": settings.decision_boundary is not None,
        "cannot_flag": chosen.rule.check_levels(levels_of(settings, chosen, question, n_prompts,
                                                          int(is_reference.sum()))),
    }
    return Decision(ev, verdicts.member, verdicts.p_values, rule_doc, verdicts.calibration,
                    _metrics(ev, verdicts.member, is_reference, labels_by_person), blocks)


def _evidence_blocks(settings, chosen: ChosenRule, question: Question, ev: Evidence,
                     others: OthersSample | None) -> list[dict]:
    """Each person's evidence block; in the per-person question, whose attack asks no name of others' photos,
    the name-prior control comes from a sample of others' photos instead."""
    blocks = evidence_blocks(ev.image_candidate_log_prob, ev.prediction, ev.owner, ev.true_index, settings.alpha,
                             chosen.tau, question.distractor_mask, question.alias_indices(), question.shared_names,
                             seed=settings.seed)
    if question.mode == PER_PERSON:
        own_scores = person_candidate_scores(ev.image_candidate_log_prob, ev.owner, len(blocks))
        priors = others.blocks(own_scores, settings.alpha) if others is not None else [None] * len(blocks)
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
