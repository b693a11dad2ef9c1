"""Many people at once: BH and q-values against their definitions, the estimate of how many people the model
knows, and the level (per person or FDR) an audit is decided at."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from idia.attack.decide.fdr import KNOWN_GRID, benjamini_hochberg, fdr_summary, known_bound, q_values, storey_pi0
from idia.attack.decide.levels import choose_level

p_values = arrays(np.float64, st.integers(1, 40), elements=st.sampled_from([0.001, 0.01, 0.02, 0.05, 0.3, 1.0]) |
                  st.floats(0, 1))


def bh_loop(p, q):
    """The definition: the k smallest, k the largest with p_(k) <= k q / m (a p-value on the line counts, however
    k q / m rounds)."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    k = max([r for r in range(1, m + 1) if p[order[r - 1]] * m <= r * q * (1 + 1e-12)], default=0)
    return np.array([i in set(order[:k]) for i in range(m)])


@settings(deadline=None, max_examples=80)
@given(p_values, st.sampled_from([0.01, 0.05, 0.1, 0.2]))
def test_bh_and_q_values_match_the_definition(p, q):
    flagged, threshold = benjamini_hochberg(p, q)
    want = bh_loop(list(p), q)
    assert (flagged == want).all()
    assert ((q_values(p) <= q + 1e-12) == want).all()  # the q-value is the smallest q that flags the person
    assert threshold == (p[want].max() if want.any() else 0.0)


def test_bh_keeps_the_false_discovery_proportion_near_q_on_independent_p_values():
    rng = np.random.default_rng(1)
    fdp = []
    for _ in range(300):
        null = rng.uniform(size=900)
        known = rng.uniform(0, 1e-3, size=100)
        flagged, _ = benjamini_hochberg(np.r_[null, known], 0.05)
        fdp.append(flagged[:900].sum() / max(flagged.sum(), 1))
    assert np.mean(fdp) <= 0.05 * 0.9 + 3 * np.std(fdp) / np.sqrt(300)  # FDR = q m0 / m under independence


@pytest.mark.parametrize("conservative", [False, True])
def test_the_known_lower_bound_holds_and_is_not_empty(conservative):
    """200 known people among 1,000; the unknown ones' p-values uniform, or conservative as the larger of two
    (name-and-face): the 95% lower bound stays at or below 200 in at least 95% of draws and finds most of them,
    where Storey's count above 0.5 puts every person among the unknown when the nulls are conservative."""
    rng = np.random.default_rng(2)
    covered, lows = 0, []
    for _ in range(200):
        null = rng.uniform(size=(800, 2)).max(axis=1) if conservative else rng.uniform(size=800)
        p = np.r_[null, rng.uniform(0, 1e-3, size=200)]
        estimate, low, t = known_bound(p)
        covered += low <= 200
        lows.append(low)
        assert low <= estimate <= 1000 and t in KNOWN_GRID
    assert covered >= 190
    assert np.median(lows) >= 170
    if conservative:
        assert storey_pi0(p) == 1.0  # Storey's estimate of the known: 1,000 - 1,000 = 0


def test_the_known_lower_bound_is_zero_without_signal():
    p = np.random.default_rng(5).uniform(size=5000)
    estimate, low, _ = known_bound(p)
    assert low == 0 and estimate <= 100


def test_the_summary_counts_what_the_level_flagged():
    p = np.r_[np.full(10, 1e-4), np.linspace(0.02, 1, 90)]
    flagged, threshold = benjamini_hochberg(p, 0.05)
    s = fdr_summary(p, flagged, threshold, {"kind": "fdr", "q": 0.05})
    assert s["flagged"] == 10 and s["threshold_p"] == 1e-4 and s["m"] == 100
    assert s["expected_false_discoveries_at_most"] == round(100 * 1e-4, 3)
    assert 0 <= s["known_at_least95"] <= s["known_estimate"] <= 10 and s["known_threshold"] in KNOWN_GRID


def test_the_level_per_person_or_fdr():
    assert choose_level(None, 0.05, 1).kind == "per-person"  # one person: the takedown's question
    assert choose_level(0.01, 0.05, 500).kind == "per-person"  # an explicit alpha
    fdr = choose_level(None, 0.05, 10_000)
    assert fdr.kind == "fdr" and fdr.draws_needed() == 9_999  # BH can flag a group of 20 at 20 q / m
    assert choose_level(0.01, 0.05, 10).draws_needed() == 999  # alpha / 10
    p = np.r_[np.full(5, 1e-5), np.full(5, 0.5)]
    flagged, threshold = fdr.decide(p, np.ones(10, bool))
    assert flagged.sum() == 5 and threshold == 1e-5  # BH over the p-values it is given (m = 10)
    assert (choose_level(0.01, 0.05, 10).decide(p, np.ones(10, bool))[0] == (p <= 0.01)).all()


def test_an_fdr_audit_that_flags_nobody_says_why():
    """Five people at p = 0.001 among 1,000 stand out alone, but BH needs the 5th smallest at 5 x 0.05 / 1,000;
    with the face side's floor at 1/1,000 it takes 20 such people together: the note says so, and what --alpha
    would flag."""
    from idia.attack.decide.faces import FaceSide
    from idia.attack.decide.refine import Refined, fdr_power_note
    n = 1000
    p = np.r_[np.full(5, 0.001), np.linspace(0.02, 1, n - 5)]
    face = FaceSide(p, np.full(n, 3), np.full(n, 999), np.full(n, 999), np.zeros(n, np.int64), np.zeros(n))
    coarse = FaceSide(p, np.full(n, 3), np.r_[9999, np.full(4, 3463), np.full(n - 5, 9999)], np.full(n, 999),
                      np.zeros(n, np.int64), np.zeros(n))
    refined = Refined(p, face, 9_999, 999)
    level, reference = choose_level(None, 0.05, n), np.zeros(n, bool)
    flagged, _ = level.decide(p, ~reference)
    assert not flagged.any()
    note = fdr_power_note(level, p, flagged, reference, refined)
    assert "among 1000 people, though 5 have p <= 0.01" in note and "at least 20 people" in note
    assert "--alpha 0.01" in note
    # The floor is that of most who stand out (their 3-photo bank of 3,463), not the finest of anyone.
    note = fdr_power_note(level, p, flagged, reference, Refined(p, coarse, 9_999, 999))
    assert "most of those people could get is 0.00029" in note and "among 3463 other people's photos" in note and "at least 6 people" in note
    # Nothing to explain: someone was flagged, nobody stands out alone, or each person was judged alone.
    assert fdr_power_note(level, p, flagged | (np.arange(n) == 0), reference, refined) is None
    assert fdr_power_note(level, np.full(n, 0.5), flagged, reference, refined) is None
    assert fdr_power_note(choose_level(0.01, 0.05, n), p, flagged, reference, refined) is None
