"""Sequential p-values: the vectorised state against its slow obvious twin, validity under the null by
simulation, the further distractors equal to the full computation where both run, and the face side against a
plain loop."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from idia.attack.decide.evidence import gather_evidence
from idia.attack.decide.faces import face_side, face_side_full, photos_per_comparison
from idia.attack.decide.permutation import extend_name_side, permutation_p_values, person_candidate_scores
from idia.attack.decide.sequential import SequentialPValues, sequential_p_values, smallest_reachable_p

grid = st.integers(-3, 3).map(float)  # coarse: ties (which count against the person) happen


@settings(deadline=None, max_examples=60)
@given(st.integers(1, 6), st.integers(0, 12), st.integers(0, 30), st.integers(1, 4), st.data())
def test_the_state_fed_in_blocks_equals_walking_the_draws(n_people, n_first, n_more, h, data):
    n_max = n_first + data.draw(st.integers(0, n_more))
    observed = data.draw(arrays(np.float64, n_people, elements=grid))
    draws = data.draw(arrays(np.float64, (n_people, n_first + n_more), elements=grid))
    cuts = sorted(data.draw(st.lists(st.integers(n_first, n_first + n_more), max_size=4)))
    first = (draws[:, :n_first] >= observed[:, None]).sum(axis=1)
    state = SequentialPValues(np.full(n_people, n_first), first, n_max, h)
    for a, b in zip([n_first] + cuts, cuts + [n_first + n_more]):
        live = state.active()
        state.add(live, draws[live, a:b] >= observed[live, None])
    want = sequential_p_values(observed, draws, n_first, n_max, h)
    np.testing.assert_allclose(state.p_values(), want)


def test_sequential_p_values_are_valid_under_the_null():
    """Exchangeable observed value and draws: P(p <= u) stays at or below u, measured on 20,000 people."""
    rng = np.random.default_rng(0)
    n, n_first, n_max = 20_000, 99, 2_000
    observed = rng.normal(size=n)
    state = SequentialPValues(np.full(n, n_first), (rng.normal(size=(n, n_first)) >= observed[:, None]).sum(1), n_max)
    while len(state.active()):  # fresh draws for the people still running: exchangeable with the observed value
        live = state.active()
        state.add(live, rng.normal(size=(len(live), 300)) >= observed[live, None])
    p = state.p_values()
    for u in (0.001, 0.005, 0.01, 0.05, 0.2):
        share = (p <= u).mean()
        assert share <= u + 3 * np.sqrt(u * (1 - u) / n), (u, share)  # at most u plus three standard errors
    assert 0.008 <= (p <= 0.01).mean()  # and not uselessly conservative
    assert state.drawn_.mean() < 300  # most people stop early


def test_a_person_who_stops_in_the_first_block_keeps_the_fixed_n_p_value():
    state = SequentialPValues(np.array([999, 999]), np.array([10, 3]), 10_000)
    assert state.p_values()[0] == 11 / 1000 and list(state.active()) == [1]
    assert smallest_reachable_p(10_000) == 1 / 10_001


def _world_like(seed, n_people=7, n_images=30, n_prompts=3, n_first=20, d=8):
    rng = np.random.default_rng(seed)

    def unit(*shape):
        x = rng.normal(size=shape).astype(np.float32)
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    images = unit(n_images, d)
    owner = np.sort(np.r_[np.arange(n_people), rng.integers(0, n_people, n_images - n_people)])
    own = unit(n_prompts, n_people, d) + 0.8 * images[np.searchsorted(owner, np.arange(n_people))][None]  # learned
    own /= np.linalg.norm(own, axis=-1, keepdims=True)
    return rng, unit, images, owner, own.astype(np.float32), unit(n_prompts, n_first, d)


def _extension_against_full(seed: int, n_more: int) -> np.ndarray:
    """Rank the name among all n_first + n_more distractors at once (the full computation: every candidate's mean
    log-probability), and sequentially (first block, then the further names by mean cosine): a person who went
    through every distractor gets exactly the full permutation p-value, and every person the p-value of walking
    the full scores draw by draw. Returns how many distractors each person drew."""
    rng, unit, images, owner, own, first = _world_like(seed)
    n_people, n_first = own.shape[1], first.shape[1]
    more = unit(first.shape[0], n_more, first.shape[2])
    full_text = np.concatenate([np.concatenate([first, more], axis=1)[:, None].repeat(n_people, 1),
                                own[:, :, None]], axis=2)  # [P, person, D + 1, d]: distractors then own name
    full = []
    for i in range(n_people):
        rows = owner == i
        ev = gather_evidence(images[rows], np.zeros(rows.sum(), np.int64), np.array([n_first + n_more]),
                             full_text[:, i], 10.0)
        full.append(person_candidate_scores(ev.image_candidate_log_prob, np.zeros(rows.sum(), np.int64), 1)[0])
    full = np.array(full)
    ranks_first = (full[:, :n_first] >= full[:, -1:]).sum(axis=1)
    state = extend_name_side(ranks_first, np.full(n_people, n_first), own.mean(axis=0),
                             np.stack([images[owner == i].mean(axis=0) for i in range(n_people)]), None,
                             lambda g, a, b: more[:, a:b].mean(axis=0), n_first + n_more, h=3, block=7)
    p_full = permutation_p_values(full, np.full(n_people, n_first + n_more))
    through = state.drawn_ == n_first + n_more
    np.testing.assert_allclose(state.p_values()[through], p_full[through], rtol=1e-12)
    np.testing.assert_allclose(state.p_values(), sequential_p_values(full[:, -1], full[:, :-1], n_first,
                                                                     n_first + n_more, h=3), rtol=1e-12)
    return state.drawn_


@settings(deadline=None, max_examples=25)
@given(st.integers(0, 10_000), st.integers(0, 60))
def test_further_distractors_equal_the_full_permutation_where_both_run(seed, n_more):
    drawn = _extension_against_full(seed, n_more)  # asserts the p-values equal the full computation's
    assert drawn.min() >= 20 and drawn.max() <= 20 + n_more  # never fewer than the first block, never past the cap


def test_the_extension_case_stops_early_stops_late_and_runs_through():
    drawn = _extension_against_full(1, 40)
    assert set(drawn) >= {20, 36, 60}  # kept the first block's value; stopped at the 3rd exceedance; went through


@settings(deadline=None, max_examples=25)
@given(st.integers(0, 10_000), st.integers(1, 40))
def test_face_side_equals_a_plain_loop(seed, bank_needed):
    _, _, images, owner, own, _ = _world_like(seed, n_people=12, n_images=40)
    got = face_side(own.mean(axis=0), images, owner, bank_needed, seed=seed, h=2, block=3)
    np.testing.assert_allclose(got.p_value, face_side_full(own.mean(axis=0), images, owner, bank_needed, seed, h=2))


def test_photos_per_comparison_keeps_the_bank_the_level_needs():
    counts = np.array([10, 10, 3, 3, 3, 1, 1, 2])
    assert photos_per_comparison(counts, 1) == 10  # another person with 10 photos
    assert photos_per_comparison(counts, 4) == 3  # four others with 3 or more
    assert photos_per_comparison(counts, 100) == 1  # everyone else, at one photo each


def test_the_extension_records_the_distractors_the_lists_could_supply():
    """The level asks for 9,999 distractors (BH among 10,000), the lists hold 50 more than the first 20: people go
    through all 70 and the record's ceiling (and so its smallest p-value) is 70, not 9,999."""
    from idia.attack.decide.levels import choose_level
    from idia.attack.decide.refine import refine
    rng, unit, images, owner, own, first = _world_like(3)
    n_people, n_first = own.shape[1], first.shape[1]
    more = unit(first.shape[0], 50, first.shape[2]).mean(axis=0)

    class Supply:
        def names(self, g):
            return [f"name {i}" for i in range(50)]

        def __call__(self, g, start, stop):
            return more[start:stop]

    blocks = [{"permutation": {"rank": 1, "n_distractors": n_first, "p_value": 1 / (n_first + 1)},
               "aliases": None} for _ in range(n_people)]
    refined = refine(blocks, images, owner, own.mean(axis=0), None, choose_level(None, 0.05, 10_000), 100_000,
                     further=Supply())
    assert refined.n_max_distractors == n_first + 50
    assert max(b["permutation"]["drawn"] for b in blocks) == n_first + 50
    assert refined.smallest_p() >= 1 / (n_first + 51)
