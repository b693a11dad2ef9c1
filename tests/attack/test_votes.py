"""The paper's rule, computed by hand on small constructed cases, must match `attack.idia` exactly."""

from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idia.attack.decide import calibrate
from idia.attack.decide.evidence import NO_VOTE, gather_evidence, majority_votes, paper_score

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _onehot_text(n_prompts, n_candidates, dim):
    """Prompt embeddings where candidate c under every prompt is the unit vector e_c (dim >= n_candidates)."""
    text = np.zeros((n_prompts, n_candidates, dim), dtype=np.float32)
    for c in range(n_candidates):
        text[:, c, c] = 1.0
    return text


def test_majority_votes_ties_and_skips_by_hand():
    # Two people, three prompts, four candidates. Rows are images, columns prompts, entries the argmax name.
    owner = np.array([0, 0, 0, 1, 1])
    prediction = np.array([
        [2, 1, 3],   # person 0, image 0
        [2, 3, 3],   # person 0, image 1
        [0, 1, 0],   # person 0, image 2
        [1, 1, 0],   # person 1, image 0
        [1, 2, 3],   # person 1, image 1
    ])
    vote, count, tie = majority_votes(owner, prediction, n_people=2, n_candidates=4)
    # Person 0: prompt 0 -> {2,2,0}: 2 wins with 2; prompt 1 -> {1,3,1}: 1 wins; prompt 2 -> {3,3,0}: 3 wins.
    # Person 1: prompt 0 -> {1,1}: 1; prompt 1 -> {1,2}: tie, no vote; prompt 2 -> {0,3}: tie, no vote.
    assert vote.tolist() == [[2, 1, 3], [1, NO_VOTE, NO_VOTE]]
    assert count.tolist() == [[2, 2, 2], [2, 1, 1]]
    assert tie.tolist() == [[False, False, False], [False, True, True]]
    true_index = np.array([3, 1])
    # Person 0's true name (3) wins prompt 2 only; person 1's (1) wins prompt 0 only; ties never count.
    assert paper_score(vote, true_index).tolist() == [1, 1]
    assert paper_score(vote, np.array([2, 2])).tolist() == [1, 0]


def test_tau_decides_membership():
    vote = np.array([[5, 5, 5, NO_VOTE], [5, 2, 2, 2], [1, 1, 1, 1]])
    score = paper_score(vote, np.array([5, 5, 5]))
    assert score.tolist() == [3, 1, 0]
    assert (score >= 1).tolist() == [True, True, False]   # the paper's tau = 1
    assert (score >= 2).tolist() == [True, False, False]


def test_gather_evidence_matches_a_hand_computed_case():
    # Candidates are orthogonal unit vectors; an image "points at" the names it resembles.
    n_prompts, n_cand, dim = 2, 3, 4
    text = _onehot_text(n_prompts, n_cand, dim)
    # Make prompt 1 see candidate 2 a little more strongly, so argmax can differ between prompts.
    text[1, 2] = np.array([0.0, 0.3, 0.95, 0.0]) / np.linalg.norm([0.0, 0.3, 0.95, 0.0])
    images = np.array([
        [0.9, 0.44, 0.0, 0.0],   # person 0: name 0 under both prompts
        [0.0, 0.8, 0.6, 0.0],    # person 0: name 1 under prompt 0, name 2 under prompt 1
        [0.85, 0.0, 0.53, 0.0],  # person 0: name 0 under both prompts
        [0.0, 0.0, 0.0, 1.0],    # person 1: equidistant from all names -> a tie: it names nobody
    ], dtype=np.float32)
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    owner = np.array([0, 0, 0, 1])
    ev = gather_evidence(images, owner, np.array([0, 2]), text, logit_scale=10.0, top_k=2)

    sims = np.einsum("id,pcd->ipc", images, text)
    assert ev.prediction[:3].tolist() == sims[:3].argmax(axis=2).tolist() == [[0, 0], [1, 2], [0, 0]]
    assert ev.prediction[3].tolist() == [NO_VOTE, NO_VOTE]  # every name scores alike: not the first candidate
    # Person 0: both prompts' majority is name 0 (2 of 3 images) = the true name -> score 2.
    assert ev.vote[0].tolist() == [0, 0] and ev.score[0] == 2 and not ev.tie[0].any()
    # Person 1's one image ties under both prompts: no vote, a tie, score 0.
    assert ev.vote[1].tolist() == [NO_VOTE, NO_VOTE] and ev.tie[1].all() and ev.score[1] == 0
    assert ev.top_tie.tolist() == [False, False, False, True]
    # Ranks and log-probabilities of the true name, by hand.
    for i, p in enumerate(owner):
        t = [0, 2][p]
        for j in range(n_prompts):
            assert ev.true_rank[i, j] == 1 + int((sims[i, j] > sims[i, j, t]).sum())
            logits = 10.0 * sims[i, j]
            expected = logits[t] - np.log(np.exp(logits).sum())
            assert ev.true_log_prob[i, j] == pytest.approx(expected, abs=1e-5)
    assert ev.mean_log_prob[0] == pytest.approx(ev.true_log_prob[:3].mean(), abs=1e-6)
    assert ev.top_index[1].tolist() == list(np.argsort(-sims[1].mean(axis=0))[:2])


def test_empirical_p_values_use_the_plus_one_correction():
    null = np.array([0.0, 1.0, 1.0, 3.0])
    p = calibrate.empirical_p_value(null, [4.0, 3.0, 1.0, -1.0])
    assert p.tolist() == pytest.approx([1 / 5, 2 / 5, 4 / 5, 5 / 5])


def test_calibrated_threshold_keeps_the_reference_fpr_at_or_below_target():
    null = np.arange(100, dtype=float)  # 0..99
    cal = calibrate.NullCalibration(target_fpr=0.05).fit(null)
    # p(v) <= 0.05 needs at most floor(0.05 * 101 - 1) = 4 reference values >= v: v must exceed 95.
    assert cal.threshold_ == 95.0
    assert cal.reference_false_positives_ == 4 and cal.reference_fpr_ <= 0.05
    assert cal.predict([95.0, 95.5, 200.0]).tolist() == [False, True, True]
    assert np.all(cal.p_value([95.5, 200.0]) <= 0.05)
    lo, hi = cal.reference_fpr_ci_
    assert lo < 0.04 < hi


def test_target_fpr_too_small_for_the_reference_set_is_refused():
    from idia.errors import InputError
    with pytest.raises(InputError, match="needs at least 99 reference people"):
        calibrate.NullCalibration(target_fpr=0.01).fit(np.arange(20.0))


def test_markov_bound():
    p = calibrate.markov_p_value([0, 1, 21], n_prompts=21, n_candidates=1000)
    assert p.tolist() == pytest.approx([1.0, 0.021, 0.001])


def test_clopper_pearson_known_values():
    lo, hi = calibrate.clopper_pearson(0, 100)
    assert lo == 0.0 and hi == pytest.approx(0.03621669, abs=1e-6)
    lo, hi = calibrate.clopper_pearson(5, 100)
    assert lo == pytest.approx(0.01643, abs=1e-4) and hi == pytest.approx(0.11284, abs=1e-4)


@st.composite
def predictions(draw):
    n_people = draw(st.integers(1, 5))
    n_prompts = draw(st.integers(1, 4))
    n_candidates = draw(st.integers(1, 5))
    owner = draw(st.lists(st.integers(0, n_people - 1), min_size=0, max_size=14))
    # NO_VOTE: an image whose top similarity several names share (it names nobody for that prompt)
    pred = draw(st.lists(st.lists(st.integers(NO_VOTE, n_candidates - 1), min_size=n_prompts, max_size=n_prompts),
                         min_size=len(owner), max_size=len(owner)))
    return (np.array(owner, dtype=np.int64), np.array(pred, dtype=np.int64).reshape(len(owner), n_prompts),
            n_people, n_candidates)


@FAST
@given(predictions())
def test_majority_votes_equal_a_plain_loop(case):
    owner, pred, n_people, n_candidates = case
    vote, count, tie = majority_votes(owner, pred, n_people, n_candidates)
    for person in range(n_people):
        for j in range(pred.shape[1]):
            asked = [int(pred[r, j]) for r in range(len(owner)) if owner[r] == person]
            answers = Counter(a for a in asked if a != NO_VOTE)
            if not answers:  # no photo, or every photo's answer was a tie: no vote; a tie when photos were asked
                assert vote[person, j] == NO_VOTE and count[person, j] == 0 and bool(tie[person, j]) == bool(asked)
                continue
            top = max(answers.values())
            leaders = [c for c, k in answers.items() if k == top]
            assert count[person, j] == top
            assert bool(tie[person, j]) == (len(leaders) > 1)
            assert vote[person, j] == (leaders[0] if len(leaders) == 1 else NO_VOTE)


def test_a_model_giving_every_name_the_same_score_gives_ties_not_the_first_candidate():
    """The probe: every vote went to the first candidate with tie false. Variant: only two of four names tie at
    the top for one photo; the other photo still answers."""
    n_prompts, n_cand, dim = 3, 4, 4
    zero = gather_evidence(np.zeros((2, dim), np.float32), np.array([0, 1]), np.array([1, 2]),
                           np.zeros((n_prompts, n_cand, dim), np.float32), logit_scale=100.0)
    assert (zero.prediction == NO_VOTE).all() and (zero.vote == NO_VOTE).all() and zero.tie.all()
    assert zero.score.tolist() == [0, 0] and zero.top_tie.all()
    text = _onehot_text(n_prompts, n_cand, dim)
    images = np.array([[0.6, 0.6, 0.0, 0.2], [0.0, 0.0, 1.0, 0.0]], dtype=np.float32)  # photo 0: names 0 and 1 tie
    ev = gather_evidence(images, np.array([0, 1]), np.array([1, 2]), text, logit_scale=10.0, top_k=2)
    assert ev.prediction.tolist() == [[NO_VOTE] * 3, [2] * 3]
    assert ev.tie[0].all() and ev.vote[1].tolist() == [2, 2, 2] and ev.score.tolist() == [0, 3]
    assert ev.top_tie.tolist() == [True, False]


def test_the_name_prior_counts_no_pick_for_a_tied_answer():
    from idia.attack.decide.controls import name_prior
    scores = np.zeros((3, 3), np.float32)
    predictions = np.array([[NO_VOTE, 2], [1, NO_VOTE], [2, 2]])  # a tied answer must not be read as name 2
    prior = name_prior(scores, predictions, np.array([0, 1, 2]), np.array([0, 1, 2]))
    assert prior["pick_rate_others"].tolist() == pytest.approx([0.0, 0.0, 1 / 4])
