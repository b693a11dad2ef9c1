"""How a verification judges, without a model: every rule decides a second run at the first run's boundary, the
utility change carries a paired interval, probes not run are listed, and "forgotten" needs every probe."""

from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from idia.attack.decide.levels import Level
from idia.attack.decide.rules import RULES, RuleInputs, flag_at_level
from idia.compliance.cli import main
from idia.defense import base, judge
from idia.defense.probes import name_forms, parse_variants
from idia.defense.redact import CaptionSampler
from idia.defense.utility import paired_change
from idia.defense.verify import VerifyConfig
from idia.errors import InputError


def _inputs(mean_log_prob, score, p, boundary=None, n_ref=40):
    """Six audited people and `n_ref` reference people (the last rows); the face side as likely as the name side."""
    is_ref = np.arange(len(score)) >= len(score) - n_ref
    ev = SimpleNamespace(mean_log_prob=np.asarray(mean_log_prob, float), score=np.asarray(score))
    return RuleInputs(ev, np.asarray(p, float), is_ref, 21, 1000, 0.01, 1, 0.05, False,
                      face_p=np.asarray(p, float) / 2, boundary=boundary)


def _judged(rule: str, inputs: RuleInputs, level: Level):
    """(verdicts, flagged) as `decide` gets them: a p-value rule flags at the level, or at the given boundary."""
    r = RULES.get(rule)
    verdicts = r.decide(inputs)
    if not r.uses_level:
        return verdicts, verdicts.member
    return verdicts, flag_at_level(verdicts, level, ~inputs.is_reference, inputs.boundary)[0]


@pytest.mark.parametrize("rule", ["paper", "permutation", "calibrated", "name-and-face"])
@pytest.mark.parametrize("kind", ["per-person", "fdr"])
def test_every_rule_decides_a_second_run_at_the_first_runs_boundary(rule, kind):
    rng = np.random.default_rng(0)
    n = 46
    level = Level(kind, 0.01 if kind == "per-person" else None, 0.05 if kind == "fdr" else None, n - 40)
    first = _inputs(rng.normal(-6, 1, n), rng.integers(0, 4, n), np.sort(rng.uniform(0, 0.05, n)) ** 2)
    own, own_flagged = _judged(rule, first, level)
    assert own.boundary  # every rule says what decides another run as it decided this one
    # The "after" run: every score lower (the reference people's too), so a rule that refits moves its boundary.
    second = dict(mean_log_prob=first.evidence.mean_log_prob - 2, score=np.maximum(first.evidence.score - 1, 0),
                  p=np.minimum(first.permutation_p * 3, 1))
    refit, refit_flagged = _judged(rule, _inputs(**second), level)
    fixed, fixed_flagged = _judged(rule, _inputs(**second, boundary=own.boundary), level)
    assert fixed.boundary == own.boundary
    if rule == "calibrated":  # refitting on the lowered reference would flag the same share again
        assert fixed.calibration["threshold"] == own.calibration["threshold"] != refit.calibration["threshold"]
        assert fixed_flagged.sum() < refit_flagged.sum()
        assert np.array_equal(fixed_flagged, second["mean_log_prob"] > own.calibration["threshold"])
    elif rule == "paper" or kind == "per-person":  # a fixed level: refitting changes nothing
        assert np.array_equal(fixed_flagged, refit_flagged)
    else:  # BH's threshold depends on the run's p-values: the after run is judged at the before run's threshold
        threshold = own.boundary["p_threshold"]
        assert np.array_equal(fixed_flagged, (fixed.p_values <= threshold) & (threshold > 0))
        assert own_flagged.any()


def test_the_utility_change_has_a_paired_interval():
    before = np.array([1] * 12 + [1] * 9 + [0] * 2 + [0] * 21, bool)
    after = np.array([1] * 12 + [0] * 9 + [1] * 2 + [0] * 21, bool)
    u = paired_change(before, after)
    assert (u["images_lost"], u["images_gained"]) == (9, 2)
    assert u["change"] == pytest.approx(-7 / 44)
    lo, hi = u["change_ci95"]
    assert lo == pytest.approx(-0.2931, abs=1e-4) and hi == pytest.approx(-0.0113, abs=1e-4)  # Agresti-Min by hand
    for key in ("top1_before", "top1_after"):
        assert u[f"{key}_ci95"][0] < u[key] < u[f"{key}_ci95"][1]


@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=200))
@settings(max_examples=80, deadline=None)
def test_the_interval_holds_the_change_and_stays_in_bounds(pairs):
    before, after = (np.array(x, bool) for x in zip(*pairs))
    u = paired_change(before, after)
    lo, hi = u["change_ci95"]
    assert -1 <= lo <= u["change"] <= hi <= 1
    if np.array_equal(before, after):  # no image changed: an interval around no change, not a point
        assert lo < 0 < hi


def test_forgotten_needs_every_probe_and_probes_not_run_are_listed(tmp_path):
    names = ["Kojo Huang", "Ann Ray"]
    held = judge.verdict(names, {"unseen-photos": [], "heldout": [], "variant:last": []}, [])
    assert held["forgotten"] and held["failed_probes"] == [] and all(r["forgotten"] for r in held["per_person"])
    back = judge.verdict(names, {"unseen-photos": [], "variant:last": ["Kojo Huang"], "relearning:25": []}, [])
    assert not back["forgotten"] and back["failed_probes"] == ["variant:last"]
    assert [r["identified_by"] for r in back["per_person"]] == [["variant:last"], []]
    assert back["text"].startswith("not forgotten: 1 of 2")
    cfg = VerifyConfig(attack=None, names=tmp_path, tower="image", probes=False, relearn_steps=(), split_photos=False)
    skipped = judge.not_run(cfg, cfg.chain(), split=False, relearnable=True, variants=("first", "last"))
    assert [r["probe"] for r in skipped] == ["unseen-photos", "heldout", "variant:first", "variant:last",
                                            "relearning", "utility"]
    partial = judge.verdict(names, {"templates": []}, skipped)
    assert partial["forgotten"] and "not run, so not shown: unseen-photos, heldout" in partial["text"]
    assert "utility" not in partial["probes_not_run"]


def test_variants_name_the_forms_a_person_is_known_by():
    assert parse_variants("last, first") == ("first", "last") and parse_variants(None) == ()
    assert name_forms(["Kojo Huang", "Ann Ray"], ("last", "initials")) == ["Huang", "K. Huang", "Ray", "A. Ray"]
    with pytest.raises(InputError, match="name variant must be one of first, last, initials, got 'middle'"):
        parse_variants("first,middle")
    assert base.all_options()["variants"].check("first,middle") == "must each be one of first, last, initials, " \
                                                                   "got 'middle'"
    sampler = CaptionSampler(["Kojo Huang"], "a person", ["a red circle"], [], [], ["a photo of {0}"], 1.0, 0.5, 0.3,
                             forms=["Huang", "K. Huang"])
    named, neutral = sampler.redaction(200, np.random.default_rng(0))
    assert set(named) == {"a photo of Kojo Huang", "a photo of Huang", "a photo of K. Huang"}
    assert 60 < sum(n == "a photo of Kojo Huang" for n in named) < 140 and set(neutral) == {"a photo of a person"}


def test_a_bad_variant_is_one_line_on_the_command_line(tmp_path):
    names = tmp_path / "n.txt"
    names.write_text("Kojo Huang\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["defend", "redact", "--model", "world", "--names", str(names),
                                       "--variants", "middle", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--variants" in result.output and "'middle'" in result.output
