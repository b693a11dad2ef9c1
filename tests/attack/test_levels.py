"""Settings at which nobody can be identified are said before any model loads, and prompts longer than the text
context are found: cut names are said, names the cut makes alike are refused."""

import pytest
from open_clip.tokenizer import SimpleTokenizer

from idia.attack.decide.permutation import alias_p_values, smallest_p_value
from idia.attack.decide.rules import RULES, Levels
from idia.attack.encode.text import prompt_fit
from idia.attack.inputs.prompts import PAPER_TEMPLATES
from idia.errors import InputError


def _levels(**kw) -> Levels:
    return Levels(**{"n_prompts": 21, "n_distractors": 999, "n_reference": 0, "alpha": 0.01, "tau": 1,
                     "target_fpr": None, **kw})


def test_the_smallest_p_value_is_what_the_test_gives_a_name_that_outranks_everyone():
    import numpy as np
    for d, k in ((45, 1), (2, 1), (99, 3), (0, 1)):
        scores = np.array([[0.0] * d + [1.0 + i for i in range(k)]])  # the person's names outrank every distractor
        mask = np.array([True] * d + [False] * k)
        p, _, _ = alias_p_values(scores, [list(range(d, d + k))], mask)
        assert p[0] == pytest.approx(smallest_p_value(d, k))
    assert smallest_p_value(45) == 1 / 46


def test_the_permutation_rule_says_when_alpha_is_out_of_reach():
    """The probe: 50 candidates (45 distractors) at alpha 0.01, and 3 candidates. Variant: exactly reachable."""
    rule = RULES.get("permutation")
    said = rule.check_levels(_levels(n_distractors=45))
    assert "1/46 = 0.02174" in said and "at least 99 distractors" in said
    assert rule.check_levels(_levels(n_distractors=2)) is not None
    assert rule.check_levels(_levels(n_distractors=99)) is None and rule.check_levels(_levels(alpha=0.05,
                                                                                             n_distractors=19)) is None


def test_the_paper_rule_says_when_tau_is_above_the_prompts():
    rule = RULES.get("paper")
    assert "tau 22 is more than the 21 prompts" in rule.check_levels(_levels(tau=22))
    assert rule.check_levels(_levels(tau=21)) is None and rule.check_levels(_levels(tau=3, n_prompts=2)) is not None


def test_the_calibrated_rule_refuses_too_few_reference_people_before_any_model():
    with pytest.raises(InputError, match="needs at least 19 reference people; the reference set has 10"):
        RULES.get("calibrated").check_levels(_levels(n_reference=10, target_fpr=0.05))
    assert RULES.get("calibrated").check_levels(_levels(n_reference=19, target_fpr=0.05)) is None


TOKENIZER = SimpleTokenizer(context_length=16)  # the world model's text context


def test_two_long_names_cut_alike_in_every_prompt_are_found():
    """The probe: two 18-token names differing only at the end scored identically in all 21 prompts."""
    stem = "Wolfeschlegelsteinhausenbergerdorff Alderwood Brightwater Quill"
    a, b = stem + " Anne", stem + " Anna"
    fit = prompt_fit(TOKENIZER, PAPER_TEMPLATES, [b, "Ann Lee"], [a])
    assert fit.alike == [(a, b)]
    assert fit.cut and fit.cut[0][0] == a and fit.cut[0][2] > 16


def test_a_name_cut_only_in_long_prompts_is_said_not_refused():
    """Variant: a name that fits "{0}" but not "a photo of a person with the name {0}"."""
    name = "Krzysztof Svoboda"
    fit = prompt_fit(TOKENIZER, PAPER_TEMPLATES, ["Ann Lee", "Bo Chen"], [name])
    assert fit.alike == [] and [c[0] for c in fit.cut] == [name]
    assert all(len(TOKENIZER.encode(t.format(name))) + 2 <= 16 for t in ("{0}", "actor {0}"))
    assert prompt_fit(TOKENIZER, PAPER_TEMPLATES, ["Ann Lee"], ["Bo Chen"]).cut == []


def test_a_template_whose_prefix_fills_the_context_makes_every_name_alike():
    long_template = ("a very long and winding description of a photograph taken somewhere far away of {0}",)
    fit = prompt_fit(TOKENIZER, long_template, ["Ann Lee"], ["Bo Chen"])
    assert fit.alike == [("Bo Chen", "Ann Lee")]
