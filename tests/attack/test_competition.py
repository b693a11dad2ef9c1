"""Naming the competition: the strongest competing answer and the true name's rank against a plain loop, and
near-identical names grouped with the name their photos prefer."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from idia.attack.decide.competition import namesake_groups, near_pairs, similar, strongest_competitors


@settings(deadline=None, max_examples=60)
@given(st.integers(1, 5), st.integers(2, 7), st.data())
def test_strongest_competitor_and_rank_match_a_loop(n_people, n_cand, data):
    scores = data.draw(arrays(np.float64, (n_people, n_cand), elements=st.integers(-3, 3).map(float)))
    true = data.draw(arrays(np.int64, n_people, elements=st.integers(0, n_cand - 1)))
    strongest, rank, margin = strongest_competitors(scores, true)
    for i in range(n_people):
        others = [c for c in range(n_cand) if c != true[i]]
        best = max(scores[i, c] for c in others)
        assert scores[i, strongest[i]] == best and strongest[i] != true[i]
        assert rank[i] == 1 + sum(scores[i, c] >= scores[i, true[i]] for c in others)  # ties count against
        assert margin[i] == scores[i, true[i]] - best


NAMES = ["Anna Novak", "Ana Novak", "Novak Anna", "Peter Pan", "Petra Pan", "John Smith", "Jon Smith", "Jo Smit"]


@settings(deadline=None, max_examples=30)
@given(st.lists(st.sampled_from(NAMES), min_size=1, max_size=8, unique=True), st.integers(1, 3))
def test_near_pairs_match_every_pair_compared(names, chunk):
    want = {(i, j) for i in range(len(names)) for j in range(i + 1, len(names)) if similar(names[i], names[j]) >= 90}
    assert set(near_pairs(names, chunk=chunk)) == want


def test_near_identical_flagged_names_are_grouped_with_the_name_their_photos_prefer():
    """Two flagged people a letter apart whose photos are the same face (one learned name, one misspelling), a
    third flagged person whose strongest candidate is their own name transposed, and one alone."""
    e = np.eye(4)
    flagged = ["Anna Novak", "Ana Novak", "Peter Pan", "Lucy Jovanovic"]
    name_text = np.stack([e[0], 0.3 * e[0] + e[1], e[2], e[3]])  # "Ana Novak" is less like the face than "Anna"
    images = np.stack([e[0], e[0], 0.2 * e[2] + e[3], e[3]])  # Peter Pan's photos prefer the transposed name
    candidates = [[("Anna Nowak", 0.5 * e[0])], [], [("Pan Peter", e[3]), ("Lucy Jovanovic", e[3])], []]
    groups = namesake_groups(flagged, candidates, name_text, images)
    by_names = {tuple(sorted(g["flagged"])): g for g in groups}
    assert set(by_names) == {("Ana Novak", "Anna Novak"), ("Peter Pan",)}
    novak = by_names[("Ana Novak", "Anna Novak")]
    assert set(novak["names"]) == {"Anna Novak", "Ana Novak", "Anna Nowak"}
    assert {p["person"]: p["prefers"] for p in novak["people"]} == {"Anna Novak": "Anna Novak",
                                                                   "Ana Novak": "Anna Novak"}
    pan = by_names[("Peter Pan",)]
    assert pan["names"] == ["Peter Pan", "Pan Peter"] and pan["people"][0]["prefers"] == "Pan Peter"
