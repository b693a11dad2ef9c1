"""Many people at once: BH and q-values against their definitions, the estimate of how many people the model
knows, and the level (per person or FDR) an audit is decided at."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from idia.attack.decide.fdr import benjamini_hochberg, fdr_summary, known_interval, q_values
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


def test_the_known_interval_covers_the_truth():
    rng = np.random.default_rng(2)
    covered = 0
    for _ in range(200):
        p = np.r_[rng.uniform(size=800), rng.uniform(0, 0.01, size=200)]
        estimate, low, high = known_interval(p)
        covered += low <= 200 <= high
        assert low <= estimate <= high
    assert covered >= 180  # a 95% interval: at least 90% of 200 draws


def test_the_summary_counts_what_the_level_flagged():
    p = np.r_[np.full(10, 1e-4), np.linspace(0.02, 1, 90)]
    flagged, threshold = benjamini_hochberg(p, 0.05)
    s = fdr_summary(p, flagged, threshold, {"kind": "fdr", "q": 0.05})
    assert s["flagged"] == 10 and s["threshold_p"] == 1e-4 and s["m"] == 100
    assert s["expected_false_discoveries_at_most"] == round(100 * 1e-4, 3)
    assert s["known_interval95"][0] <= s["known_estimate"] <= s["known_interval95"][1]


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
