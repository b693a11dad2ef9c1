"""The decision rules: how verdicts and p-values follow from the evidence (`attack.decide.decision` runs them).

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
exactly as this one decided, without refitting on that run's data (paper: tau; the p-value rules, permutation
and name-and-face: `p_threshold`, the p-value at or below which the level flagged, per person or BH's;
calibrated: the reference people's null scores the threshold and p-values come from), and honours
`RuleInputs.boundary` (the settings' `decision_boundary`) by deciding with it instead of fitting its own. A
verification judges the model after a defense at the boundary the model before it was judged at, whatever the
rule; a new rule provides both (a rule whose boundary depends on the data, e.g. a level chosen across people,
records the level it arrived at)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from idia.attack.decide import calibrate
from idia.attack.decide.evidence import Evidence
from idia.attack.decide.faces import FACE_ASSUMPTION, FACE_BREAKS_IF, FACE_METHOD
from idia.attack.decide.levels import DEFAULT_ALPHA, FDR_GROUP, Level, choose_level
from idia.attack.decide.permutation import (
    ASSUMPTION,
    BREAKS_IF,
    P_VALUE_METHOD,
    PermutationTest,
    smallest_p_value,
)
from idia.attack.inputs.question import Question
from idia.errors import InputError
from idia.registry import Registry


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
    face_p: np.ndarray | None = None  # the face side's p-values (None where no bank was measured)
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
    alpha: float  # the per-person level (under an FDR level: the level the controls report at)
    tau: int
    target_fpr: float | None
    level: Level | None = None  # per person (alpha) or FDR (q over n_audited); None: per person at `alpha`
    n_max_distractors: int | None = None  # the most distractors the sequential extension may rank a name among
    n_faces: int = 0  # people with photos (audited + reference): a face bank holds at most n_faces - 1 others

    def threshold(self) -> float:
        """The largest p-value that can be flagged at all: alpha, or under BH q (everyone at p <= q)."""
        if self.level is not None and self.level.kind == "fdr":
            return float(self.level.q)
        return float(self.alpha)


@dataclass
class RecordedStatistics:
    """The per-person statistics a results.json holds, where a rule reads `Evidence` (re-derivation)."""

    score: np.ndarray
    mean_log_prob: np.ndarray


class Rule:
    """A decision rule (see the module's docstring for what each method owes the record)."""

    name = recorded = ""
    needs_reference = False
    uses_level = False  # True: a p-value rule, flagged at the run's level (alpha per person, or BH at --fdr)
    assumption, breaks_if = ASSUMPTION, BREAKS_IF

    def decide(self, inputs: RuleInputs) -> Verdicts:
        raise NotImplementedError

    def check_levels(self, levels: Levels) -> str | None:
        return None

    def rederive(self, record: dict) -> Verdicts:
        inputs = inputs_from_record(record)
        verdicts = self.decide(inputs)
        level = level_from_record(record)
        if self.uses_level and (level is not None or inputs.boundary is not None):
            audited = np.arange(len(verdicts.p_values)) < len(record["persons"])
            verdicts.member = flag_at_level(verdicts, level, audited, inputs.boundary)[0]
        return verdicts


def flag_at_level(verdicts: Verdicts, level, audited: np.ndarray, boundary: dict | None) -> tuple[np.ndarray, float]:
    """(flagged, p threshold) for a p-value rule: at an earlier run's `p_threshold` when a boundary is given (a
    verification's after judged as its before), else at the level (per person, or BH over the audited people).
    The threshold is recorded as the rule's boundary."""
    p = np.asarray(verdicts.p_values, dtype=np.float64)
    if boundary is not None:
        threshold = float(boundary["p_threshold"])
        member = (p <= threshold) & (threshold > 0)
    else:
        member, threshold = level.decide(p, audited)
    verdicts.boundary = {"p_threshold": float(threshold)}
    return member, float(threshold)


def _everyone(record: dict) -> list[dict]:
    return list(record["persons"]) + list(record.get("reference") or [])


def _permutation_p(person: dict) -> float:
    ev = person.get("evidence") or {}
    block = ev.get("aliases") or ev.get("permutation") or {}
    p = block.get("p_value")
    return float(p) if isinstance(p, (int, float)) else float("nan")


def _face_p(person: dict) -> float:
    block = (person.get("evidence") or {}).get("face") or {}
    p = block.get("p_value")
    return float(p) if isinstance(p, (int, float)) else float("nan")


def level_from_record(record: dict) -> Level | None:
    """The level a p-value rule flagged at, from `rule.level` (None: a record without one, per person at alpha)."""
    described = record["rule"].get("level")
    if not described:
        return None
    return Level(described["kind"], described.get("alpha"), described.get("q"), len(record["persons"]))


def _record_alpha(record: dict) -> float:
    rule = record["rule"]
    if rule.get("alpha") is not None:
        return float(rule["alpha"])
    level = level_from_record(record)
    return level.per_person_alpha if level is not None else DEFAULT_ALPHA


def inputs_from_record(record: dict) -> RuleInputs:
    """What `decide` read, rebuilt from a results.json: audited people, then reference people (and the boundary
    the run was decided at, when it was given one rather than fitting its own)."""
    people, rule = _everyone(record), record["rule"]
    n_audited = len(record["persons"])
    stats = RecordedStatistics(np.array([p["score"] for p in people], dtype=np.int64),
                               np.array([p["mean_log_prob"] for p in people], dtype=np.float64))
    face = np.array([_face_p(p) for p in people], dtype=np.float64)
    return RuleInputs(stats, np.array([_permutation_p(p) for p in people], dtype=np.float64),
                      np.arange(len(people)) >= n_audited, int(rule["n_prompts"]), int(rule["n_candidates"]),
                      _record_alpha(record), int(rule["tau"]) if rule.get("tau") is not None else 1,
                      rule.get("target_fpr"), any((p.get("evidence") or {}).get("aliases") for p in people),
                      None if np.isnan(face).all() else face,
                      rule.get("boundary") if rule.get("boundary_fixed") else None)


def levels_from_record(record: dict) -> Levels:
    rule = record["rule"]
    n_dist = [((p.get("evidence") or {}).get("permutation") or {}).get("n_distractors") for p in _everyone(record)]
    n_dist = [n for n in n_dist if isinstance(n, int)]
    n_first = min(n_dist) if n_dist else int(rule["n_candidates"]) - 1
    n_max = (rule.get("sequential") or {}).get("max_distractors")
    return Levels(int(rule["n_prompts"]), n_first, len(record.get("reference") or []), _record_alpha(record),
                  int(rule["tau"]) if rule.get("tau") is not None else 1, rule.get("target_fpr"),
                  level_from_record(record), int(n_max) if n_max is not None else None,
                  sum(1 for p in _everyone(record) if p.get("n_images")))


def _level_words_of(levels: Levels) -> str:
    if levels.level is not None and levels.level.kind == "fdr":
        return f"the false-discovery level q = {levels.level.q}"
    return f"alpha {levels.alpha}"


def _name_side_floor(levels: Levels) -> str | None:
    """Why the name side cannot flag anyone (its smallest p-value above the level), or None."""
    n = levels.n_distractors if levels.n_max_distractors is None else max(levels.n_distractors,
                                                                          levels.n_max_distractors)
    floor = smallest_p_value(n)
    if floor <= levels.threshold():
        return None
    need = math.ceil(1 / levels.threshold() - 1 - 1e-9)
    return (f"with {n} made-up distractors the smallest p-value the permutation test can give is 1/{n + 1} = "
            f"{floor:.4g}, above {_level_words_of(levels)}: nobody can be identified whatever the model knows; give "
            f"at least {need} distractors (--n-candidates, --max-distractors) or a larger level")


def _null_scores(inputs: RuleInputs) -> dict:
    ev, ref = inputs.evidence, inputs.is_reference
    return {"null_scores": [float(x) for x in ev.mean_log_prob[ref]],
            "null_paper_scores": [int(x) for x in ev.score[ref]]}


class PaperRule(Rule):
    """Hintersdorf et al.'s rule: member when at least tau prompts' majority votes name the person. Its p-value
    is empirical over reference people when there are some, else Markov's bound."""

    name = recorded = "paper"
    needs_reference = False
    uses_level = False
    assumption, breaks_if = calibrate.MARKOV_ASSUMPTION, BREAKS_IF

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
    uses_level = True
    assumption, breaks_if = ASSUMPTION, BREAKS_IF

    def check_levels(self, levels: Levels) -> str | None:
        return _name_side_floor(levels)

    def decide(self, inputs: RuleInputs) -> Verdicts:
        test = PermutationTest(inputs.alpha)
        method = P_VALUE_METHOD + (" (with aliases: the exact max over the person's names)"
                                   if inputs.with_aliases else "")
        return Verdicts(test.decide(inputs.permutation_p), inputs.permutation_p, method,
                        test.describe()["explanation"])


class CalibratedRule(Rule):
    """The continuous score calibrated on reference people (known non-members) at a target false-positive rate."""

    name = "calibrated"
    recorded = "calibrated-continuous"
    needs_reference = True
    uses_level = False
    assumption = ("the reference people are like the audited people the model does not know: same kind of photos, "
                  "as many of them, and names as familiar to the model")
    breaks_if = "the reference people have more or better photos, or less familiar names, than the audited people"

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


NAME_AND_FACE_ASSUMPTION = (f"either of two: (1) {ASSUMPTION}; (2) {FACE_ASSUMPTION}. The larger of the two "
                            "p-values decides, so the verdict is valid when either holds")
NAME_AND_FACE_BREAKS_IF = (f"both fail at once: (1) breaks if {BREAKS_IF}; (2) breaks if {FACE_BREAKS_IF}. Real "
                           "names break (1) alone: their parts occur in other people's captions")


class NameAndFaceRule(Rule):
    """The default: the name must outrank made-up names on the person's photos (`permutation`) AND the person's
    photos must favour the name more than other people's photos do (`faces`); the larger p-value decides, so the
    verdict holds when either null does. Measured on 9,800 of the world's namesakes (`world.namesakes`,
    `bench/namesakes.py`): the name side alone flags 2.2% of never-seen people whose names share parts with
    members at alpha = 0.01 (9.1% at 0.05), this rule 0.77% (4.2%); the world's members: 0.96 and 0.90."""

    name = recorded = "name-and-face"
    needs_reference = False
    uses_level = True
    assumption, breaks_if = NAME_AND_FACE_ASSUMPTION, NAME_AND_FACE_BREAKS_IF

    def check_levels(self, levels: Levels) -> str | None:
        """Either side's floor above the level: the name side's 1/(distractors + 1), or the face side's
        1/(bank + 1) with at most everyone else (with photos) in the bank."""
        name = _name_side_floor(levels)
        if name:
            return name
        bank = max(levels.n_faces - 1, 0)
        if smallest_p_value(bank) <= levels.threshold():
            return None
        need = math.ceil(1 / levels.threshold() - 1e-9)
        return (f"the face side compares each name with the other {bank} people's photos, so its smallest p-value is "
                f"1/{bank + 1} = {smallest_p_value(bank):.4g}, above {_level_words_of(levels)}: nobody can be "
                f"identified by the name-and-face rule whatever the model knows; audit at least {need} people "
                "(reference people count), or use --rule permutation")

    def decide(self, inputs: RuleInputs) -> Verdicts:
        face = inputs.face_p if inputs.face_p is not None else np.ones_like(inputs.permutation_p)
        p = np.maximum(inputs.permutation_p, face)
        return Verdicts(p <= inputs.alpha, p, f"the larger of: {P_VALUE_METHOD}; and {FACE_METHOD}",
                        "flagged when the name outranks enough made-up names on the person's photos AND the photos "
                        "favour the name more than enough other people's photos do")


RULES: Registry[Rule] = Registry("--rule", order=lambda rule: rule.name)
for _rule in (PaperRule, PermutationRule, CalibratedRule, NameAndFaceRule):
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
    why: str | None = None  # why auto chose this rule when it is not the default one


def choose_rule(settings, has_reference: bool, n_people: int | None = None, n_audited: int | None = None) -> ChosenRule:
    """auto: paper when --tau is given, calibrated when --target-fpr is, else name-and-face (measured the most valid
    for real names; reference people join its face bank), unless too few people (`n_people`, audited and reference)
    let its face side reach the level: then the permutation test alone, and `why` says so. A setting that belongs
    to another rule is refused."""
    name, why = settings.rule, None
    if settings.tau is not None and settings.target_fpr is not None:
        raise InputError("give either --tau or --target-fpr, not both")
    if name == "auto":
        name = ("paper" if settings.tau is not None else "calibrated" if settings.target_fpr is not None
                else "name-and-face")
        if name == "name-and-face" and n_people is not None:
            level = choose_level(settings.alpha, settings.fdr, n_people if n_audited is None else n_audited)
            threshold = level.q if level.kind == "fdr" else level.per_person_alpha
            if smallest_p_value(max(n_people - 1, 0)) > threshold:
                name = "permutation"
                why = (f"with {n_people} people the face side (each name against the other people's photos) cannot "
                       f"reach {threshold}, so the permutation test decides alone: its assumption (made-up "
                       "distractors as familiar to the model as the real name) may not hold for real names; audit at "
                       f"least {math.ceil(1 / threshold - 1e-9)} people, reference people included, for the "
                       "name-and-face rule")
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
    return ChosenRule(rule, settings.tau if settings.tau is not None else 1, None, why)


def levels_of(settings, chosen: ChosenRule, question: Question, n_prompts: int, n_reference: int,
              n_audited: int, sequential: bool = True) -> Levels:
    """The levels an attack runs at, from its settings and question (no model needed). `sequential`: further
    distractors can be drawn (the name side's floor is then 1/(n_max + 1), n_max what the level asks for)."""
    n_first = int(np.asarray(question.distractor_mask).sum())
    level = choose_level(settings.alpha, settings.fdr, n_audited)
    n_max = min(int(settings.max_distractors), max(n_first, level.draws_needed(FDR_GROUP)))
    return Levels(n_prompts, n_first, n_reference, level.per_person_alpha, chosen.tau, chosen.target_fpr, level,
                  n_max if sequential else n_first, n_audited + n_reference)
