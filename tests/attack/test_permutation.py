"""The candidate-permutation test and its controls: each vectorised rule against its slow obvious twin, the
p-value's validity under the null measured by simulation, and the controls' behaviour on built cases."""

import itertools
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from idia.attack.decide.controls import name_prior, resampled_verdict_inputs, stability
from idia.attack.decide.evidence import NO_VOTE, gather_evidence
from idia.attack.decide.permutation import (
    PermutationTest,
    alias_p_values,
    candidate_log_probs,
    permutation_p_values,
    person_candidate_scores,
)

# Scores on a coarse grid so ties (which count against the person) actually happen.
grid = st.integers(-4, 4).map(float)


@st.composite
def scores_and_truth(draw, max_people=5, max_cand=8):
    n_people = draw(st.integers(1, max_people))
    n_cand = draw(st.integers(2, max_cand))
    scores = draw(arrays(np.float64, (n_people, n_cand), elements=grid))
    true = draw(arrays(np.int64, n_people, elements=st.integers(0, n_cand - 1)))
    mask = draw(st.none() | arrays(np.bool_, n_cand))
    return scores, true, mask


def loop_p_values(scores, true, mask):
    out = []
    for i in range(len(true)):
        t = scores[i, true[i]]
        dist = [c for c in range(scores.shape[1]) if c != true[i] and (mask is None or mask[c])]
        out.append((1 + sum(scores[i, c] >= t for c in dist)) / (1 + len(dist)))
    return np.array(out)


@settings(deadline=None)
@given(scores_and_truth())
def test_p_values_match_a_plain_loop(case):
    scores, true, mask = case
    np.testing.assert_allclose(permutation_p_values(scores, true, mask), loop_p_values(scores, true, mask))


@settings(deadline=None)
@given(st.integers(1, 6), st.integers(1, 5), st.data())
def test_person_scores_match_a_loop(n_people, n_cand, data):
    n_images = data.draw(st.integers(0, 15))
    owner = data.draw(arrays(np.int64, n_images, elements=st.integers(0, n_people - 1)))
    image_scores = data.draw(arrays(np.float32, (n_images, n_cand), elements=st.floats(-5, 5, width=32)))
    got = person_candidate_scores(image_scores, owner, n_people)
    for p in range(n_people):
        rows = [image_scores[i].astype(np.float64) for i in range(n_images) if owner[i] == p]
        if rows:
            np.testing.assert_allclose(got[p], np.mean(rows, axis=0), rtol=1e-12, atol=1e-12)
        else:
            assert np.isnan(got[p]).all()


def test_candidate_log_probs_equal_the_evidence_pass_at_the_true_name():
    rng = np.random.default_rng(3)
    img = rng.normal(size=(37, 16)).astype(np.float32)
    img /= np.linalg.norm(img, axis=1, keepdims=True)
    txt = rng.normal(size=(4, 23, 16)).astype(np.float32)
    txt /= np.linalg.norm(txt, axis=2, keepdims=True)
    owner = rng.integers(0, 5, size=37)
    true = rng.integers(0, 23, size=5)
    ev = gather_evidence(img, owner, true, txt, 42.0, chunk=7)
    got = candidate_log_probs(img, txt, 42.0, chunk=5)
    assert got.dtype == np.float32 and got.shape == (37, 23)
    np.testing.assert_allclose(got[np.arange(37), true[owner]], ev.true_log_prob.mean(axis=1), rtol=1e-6, atol=1e-6)
    # Every column is a log-probability averaged over prompts: exp sums to at most 1 per prompt.
    assert (got <= 0).all()


def test_p_values_are_exact_under_the_null():
    """Scores of a name the model does not know are exchangeable with the distractors': P(p <= a) = a at
    a = j / (1 + D), measured over 20,000 simulated people with 99 distractors."""
    rng = np.random.default_rng(0)
    n, d = 20_000, 99
    scores = rng.normal(size=(n, d + 1))
    p = permutation_p_values(scores, np.zeros(n, dtype=np.int64))
    for alpha in (0.01, 0.05, 0.2):
        rate = float((p <= alpha).mean())
        sd = math.sqrt(alpha * (1 - alpha) / n)
        assert abs(rate - alpha) < 4 * sd, (alpha, rate)
    # Other audited people's names excluded: a known (high-scoring) name in the list does not change p.
    scores[:, 1] += 10
    mask = np.ones(d + 1, dtype=bool)
    mask[1] = False
    p_masked = permutation_p_values(scores, np.zeros(n, dtype=np.int64), mask)
    assert float((p_masked <= 0.05).mean()) <= 0.05 + 4 * math.sqrt(0.05 * 0.95 / n)


def brute_alias_p(row, aliases, mask):
    """Share of all same-size subsets of (aliases + distractors) whose max reaches the aliases' max."""
    pool = list(aliases) + [c for c in range(len(row)) if mask[c] and c not in aliases]
    t = max(row[a] for a in aliases)
    subsets = list(itertools.combinations(pool, len(aliases)))
    return sum(max(row[c] for c in s) >= t for s in subsets) / len(subsets)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_alias_p_values_match_brute_force_enumeration(data):
    n_cand = data.draw(st.integers(3, 9))
    row = data.draw(arrays(np.float64, n_cand, elements=grid))
    k = data.draw(st.integers(1, min(3, n_cand - 1)))
    aliases = data.draw(st.lists(st.integers(0, n_cand - 1), min_size=k, max_size=k, unique=True))
    mask = data.draw(arrays(np.bool_, n_cand))
    p, best, pos = alias_p_values(row[None, :], [aliases], mask)
    assert math.isclose(p[0], brute_alias_p(row, aliases, mask), rel_tol=1e-12)
    assert best[0] == aliases[pos[0]] and row[best[0]] == max(row[a] for a in aliases)
    single = permutation_p_values(row[None, :].repeat(k, 0), np.array(aliases), np.broadcast_to(mask, (k, n_cand)))
    pool = [row[c] for c in range(n_cand) if mask[c] or c in aliases]
    if len(set(pool)) == len(pool):  # no ties: never weaker than Bonferroni (ties at the top can make it weaker)
        assert p[0] <= min(1.0, k * single.min()) + 1e-12
    if k == 1:
        assert math.isclose(p[0], single[0])


def test_alias_test_holds_its_level_under_the_null():
    rng = np.random.default_rng(1)
    n, d, k = 20_000, 97, 3
    scores = rng.normal(size=(n, d + k))
    p, _, _ = alias_p_values(scores, [[0, 1, 2]] * n)
    rate = float((p <= 0.05).mean())
    assert rate <= 0.05 + 4 * math.sqrt(0.05 * 0.95 / n), rate


def test_permutation_test_decides_and_says_its_assumption():
    test = PermutationTest(alpha=0.05)
    assert test.alpha == 0.05
    assert test.decide([0.01, 0.05, 0.2]).tolist() == [True, True, False]
    d = test.describe()
    assert d["decided_by"] == "permutation" and "distractors" in d["assumption"]
    assert test.smallest_p(799) == 1 / 800


# --- controls ------------------------------------------------------------------------------------------------

@st.composite
def attack_arrays(draw):
    n_people = draw(st.integers(1, 4))
    n_cand = draw(st.integers(2, 5))
    n_prompts = draw(st.integers(1, 3))
    n_images = draw(st.integers(1, 12))
    owner = draw(arrays(np.int64, n_images, elements=st.integers(0, n_people - 1)))
    preds = draw(arrays(np.int64, (n_images, n_prompts), elements=st.integers(0, n_cand - 1)))
    scores = draw(arrays(np.float64, (n_images, n_cand), elements=grid))
    true = draw(arrays(np.int64, n_people, elements=st.integers(0, n_cand - 1)))
    return scores, preds, owner, true


def loop_majority(preds_rows):
    """Per prompt: the name most rows agree on, NO_VOTE on a tie for the top count."""
    votes = []
    for j in range(preds_rows.shape[1]):
        counts = {}
        for c in preds_rows[:, j]:
            counts[int(c)] = counts.get(int(c), 0) + 1
        top = max(counts.values())
        winners = [c for c, n in counts.items() if n == top]
        votes.append(winners[0] if len(winners) == 1 else NO_VOTE)
    return votes


@settings(deadline=None)
@given(attack_arrays(), st.data())
def test_resampled_verdicts_match_a_loop(arrs, data):
    scores, preds, owner, true = arrs
    n_people = len(true)
    m = data.draw(st.integers(1, 15))
    rows = data.draw(arrays(np.int64, m, elements=st.integers(0, len(owner) - 1)))  # repeats allowed
    group = data.draw(arrays(np.int64, m, elements=st.integers(0, n_people - 1)))
    s, p, paper, ties = resampled_verdict_inputs(scores, preds, rows, group, n_people, true)
    for g in range(n_people):
        mine = rows[group == g]
        if len(mine) == 0:
            assert paper[g] == 0 and p[g] == 1.0
            continue
        person = scores[mine].mean(axis=0)
        assert math.isclose(s[g], person[true[g]], abs_tol=1e-12)
        assert math.isclose(p[g], loop_p_values(person[None, :], true[g:g + 1], None)[0])
        votes = loop_majority(preds[mine])
        assert paper[g] == sum(v == true[g] for v in votes)
        assert ties[g] == sum(v == NO_VOTE for v in votes)


@settings(deadline=None)
@given(attack_arrays())
def test_name_prior_matches_a_loop(arrs):
    scores, preds, owner, true = arrs
    n_people = len(true)
    got = name_prior(scores, preds, owner, true, alpha=0.2)
    for q in range(n_people):
        others = owner != q
        if not others.any():
            assert np.isnan(got["pick_rate_others"][q])
            continue
        t = true[q]
        assert math.isclose(got["pick_rate_others"][q], float((preds[others] == t).mean()))
        others_mean = scores[others].mean(axis=0)
        assert math.isclose(got["mean_score_others"][q], others_mean[t], abs_tol=1e-12)
        p_o = loop_p_values(others_mean[None, :], np.array([t]), None)[0]
        assert math.isclose(got["p_value_others"][q], p_o)
        assert got["prior_alone_flags"][q] == (p_o <= 0.2)
        if (owner == q).any():
            corrected = scores[owner == q].mean(axis=0) - others_mean
            assert math.isclose(got["corrected_score"][q], corrected[t], abs_tol=1e-9)


def test_name_prior_flags_a_hub_name_and_the_correction_removes_it():
    """Candidate 0 is a hub: the model favours it for every face. Person 0 carries the hub name."""
    rng = np.random.default_rng(0)
    n_people, per, n_cand = 6, 5, 50
    owner = np.repeat(np.arange(n_people), per)
    scores = rng.normal(size=(n_people * per, n_cand))
    scores[:, 0] += 3.0  # hub
    true = np.array([0, 10, 11, 12, 13, 14])
    scores[owner == 1, 10] += 3.0  # person 1 is really known
    preds = scores.argmax(axis=1)[:, None].repeat(3, axis=1)
    mask = np.ones(n_cand, dtype=bool)
    mask[true] = False
    pr = name_prior(scores, preds, owner, true, alpha=0.05, distractor_mask=mask)
    raw = permutation_p_values(person_candidate_scores(scores, owner, n_people), true, mask)
    assert raw[0] <= 0.05 and pr["prior_alone_flags"][0]  # the hub name alone would be flagged
    assert pr["pick_rate_others"][0] > 0.5
    assert pr["corrected_p_value"][0] > 0.05  # corrected by its prior, the hub's evidence is gone
    assert raw[1] <= 0.05 and not pr["prior_alone_flags"][1] and pr["corrected_p_value"][1] <= 0.05


def _clear_case(n_people=4, per=10, n_cand=40, strength=4.0, seed=0):
    rng = np.random.default_rng(seed)
    owner = np.repeat(np.arange(n_people), per)
    true = np.arange(n_people)
    scores = rng.normal(size=(n_people * per, n_cand))
    scores[np.arange(len(owner)), true[owner]] += strength
    preds = np.stack([scores.argmax(axis=1)] * 5, axis=1)
    return scores, preds, owner, true


def test_stability_is_seeded_and_agrees_on_a_clear_case():
    scores, preds, owner, true = _clear_case()
    a = stability(scores, preds, owner, true, n_resamples=15, seed=4, alpha=0.05)
    b = stability(scores, preds, owner, true, n_resamples=15, seed=4, alpha=0.05)
    for key in ("agreement_permutation", "agreement_paper", "score_interval", "photos_for_stable"):
        np.testing.assert_array_equal(a[key], b[key])
    assert a["verdict_permutation"].all() and a["verdict_paper"].all()
    assert (a["agreement_permutation"] == 1).all() and (a["agreement_paper"] == 1).all()
    assert a["photos_for_stable_text"] == ["10"] * 4 and a["warnings"] == [[]] * 4
    full = person_candidate_scores(scores, owner, 4)[np.arange(4), true]
    assert ((a["score_interval"][:, 0] <= full) & (full <= a["score_interval"][:, 1])).all()


def test_stability_warns_on_ties_and_on_a_borderline_person_and_says_how_many_photos():
    scores, preds, owner, true = _clear_case(strength=0.0, seed=2)
    # Person 0 borderline: a weak signal on 2 photos of 4 -> unstable at 4, steadier with more photos.
    keep = (owner != 0) | (np.arange(len(owner)) % 10 < 4)
    scores, preds, owner = scores[keep], preds[keep], owner[keep]
    rows0 = np.flatnonzero(owner == 0)
    scores[rows0[:2], 0] += 3.0
    preds[rows0] = np.array([[0] * 5, [0] * 5, [7] * 5, [7] * 5])  # two names tie 2:2 on every prompt
    st_ = stability(scores, preds, owner, true, n_resamples=40, seed=0, alpha=0.05, stable_sizes=(5, 20, 200))
    assert st_["tie_share"][0] == 1.0
    assert any("ties voided 100%" in w for w in st_["warnings"][0])
    assert min(st_["agreement_permutation"][0], st_["agreement_paper"][0]) < 0.9
    assert any("unstable" in w for w in st_["warnings"][0])
    assert st_["photos_for_stable"][0] == -1 or st_["photos_for_stable"][0] > 4
    assert st_["photos_for_stable_text"][0] in ("20", "200", "more than 200")
