"""Name the competition: which answer the model prefers to the true name, and which flagged names are one person's.

A verdict that the model "links this name to these photos" reads differently when its own first answer is another
name. Every person's record names the strongest competing candidate and the true name's rank among all
candidates ("ranks 2nd of 1,000; the model's first answer is Lucy Jovanovic"). And names a string apart (Jon and
John Smith, a transposed first and last name) compete for the same photos: flagged people whose names are
near-identical to each other's, or to one of their candidates, are grouped, and each group says which of its names
the photos prefer, so a report never counts one learned face twice nor blames the wrong spelling.
"""

from __future__ import annotations

import numpy as np

from idia.names import name_key

NEAR_IDENTICAL = 90.0  # rapidfuzz token_sort_ratio (0-100): one letter in a ten-letter name, or swapped parts
COMPARED_CANDIDATES = 5  # a flagged person's strongest candidates checked for near-identical names


def strongest_competitors(person_scores: np.ndarray, true_index) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(strongest, true_rank, margin) per person: the best-scoring candidate other than the true name, the true
    name's rank among all candidates (1 = the model's first answer; ties count against it), and the true score
    minus the strongest competitor's (negative when the model prefers the competitor)."""
    scores = np.asarray(person_scores, dtype=np.float64)
    rows = np.arange(len(scores))
    true_index = np.asarray(true_index, dtype=np.int64)
    others = scores.copy()
    others[rows, true_index] = -np.inf
    strongest = np.argmax(others, axis=1)
    true = scores[rows, true_index]
    rank = 1 + (others >= true[:, None]).sum(axis=1)
    return strongest, rank, true - others[rows, strongest]


def similar(a: str, b: str) -> float:
    from rapidfuzz import fuzz  # imported when names are compared
    return float(fuzz.token_sort_ratio(name_key(a), name_key(b)))


def near_pairs(names: list[str], cutoff: float = NEAR_IDENTICAL, chunk: int = 1000) -> list[tuple[int, int]]:
    """Index pairs (i < j) of near-identical names, in chunks of rows (memory bounded at any number)."""
    from rapidfuzz import fuzz, process
    keys = [name_key(n) for n in names]
    out = []
    for s in range(0, len(keys), chunk):
        block = process.cdist(keys[s:s + chunk], keys, scorer=fuzz.token_sort_ratio, score_cutoff=cutoff,
                              dtype=np.uint8)
        for r, c in zip(*np.nonzero(block)):
            if s + r < c:
                out.append((s + int(r), int(c)))
    return out


def namesake_groups(flagged_names: list[str], candidates: list[list[tuple[str, np.ndarray]]],
                    name_text: np.ndarray, person_images: np.ndarray) -> list[dict]:
    """Groups of near-identical names among the flagged people and their strongest candidates.

    flagged_names [R]; candidates[r]: (name, prompt-averaged embedding) of flagged person r's strongest candidates;
    name_text [R, d] the flagged names' own embeddings; person_images [R, d] their mean photo. A group holds every
    flagged person linked by near-identical names, and each person's record says which of the group's names
    their photos prefer (the highest mean cosine), with every name's score."""
    parent = list(range(len(flagged_names)))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in near_pairs(flagged_names):
        parent[root(i)] = root(j)
    near_candidates = [[(n, e) for n, e in cands if similar(n, flagged_names[r]) >= NEAR_IDENTICAL]
                       for r, cands in enumerate(candidates)]
    members: dict[int, list[int]] = {}
    for r in range(len(flagged_names)):
        members.setdefault(root(r), []).append(r)
    groups = []
    for rows in members.values():
        names = {flagged_names[r]: name_text[r] for r in rows}
        for r in rows:
            names.update({n: e for n, e in near_candidates[r] if n not in names})
        if len(names) < 2:
            continue
        listed, emb = list(names), np.stack([np.asarray(v, np.float64) for v in names.values()])
        people = []
        for r in rows:
            scores = emb @ np.asarray(person_images[r], np.float64)
            people.append({"person": flagged_names[r], "prefers": listed[int(np.argmax(scores))],
                           "scores": {n: round(float(s), 6) for n, s in zip(listed, scores)}})
        groups.append({"names": listed, "flagged": [flagged_names[r] for r in rows], "people": people})
    return groups
