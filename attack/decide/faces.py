"""The face side of the evidence: does this name fit this person's photos better than it fits other people's?

The candidate-permutation test ranks the person's name among made-up names on the person's photos. Its null breaks
for real names: a name made of parts the model has seen (in other people's captions) is scored more variably
across faces than a made-up name, so it tops the made-up names on a stranger's face more often than chance
(issue 18: 2.0% of 2,400 never-seen namesakes flagged at alpha = 0.01 on the synthetic world, 0.6% of names
without such parts). This side compares the name with itself instead: its score on the person's photos against
its scores on other people's photos,

    p_face = rank of s(name, first k photos of the person) among s(name, first k photos of each other person)

with s = the model's logit averaged over the photos and the prompts (the same statistic the permutation test ranks:
on the same photos, ranking mean log-probabilities ranks mean logits), and k matched so that every face in the
bank is represented by as many photos as the person's. Assumption: a model that has not learned this person has
no reason to fit their name to their photos better than to the photos of the other people in the audit. It holds
whatever the name (familiar or not), and breaks if the person's face is of a kind the name suits better than the
other faces (gender, origin, age), which the name side's matched distractors address: hence the rule that takes
the larger of the two p-values (`rules.NameAndFaceRule`) is valid when either assumption holds.

Other people's photos are drawn in a seeded order, one face at a time (`sequential`): most people stop after a few
dozen faces; those near the threshold go on through the whole bank.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from idia.attack.decide.sequential import H_EXCEEDANCES, SequentialPValues

FACE_ASSUMPTION = ("a model that has not learned this person has no reason to fit their name to their photos better "
                   "than to the photos of the other people asked (the same number of photos each)")
FACE_BREAKS_IF = ("the person's face is of a kind the name suits better than the other faces asked (gender, origin, "
                  "age), or the other people are not comparable (different photo quality)")
FACE_METHOD = ("face bank: (Besag-Clifford sequential) rank of the name's mean logit on the person's first k photos "
               "among its mean logits on the first k photos of each other person with at least k photos, drawn in a "
               "seeded order")
FIRST_BLOCK = 128


@dataclass
class FaceSide:
    """Each person's face-side p-value and what it rests on (arrays of length n_people)."""

    p_value: np.ndarray
    photos_used: np.ndarray  # k: photos of the person and of every face in their bank
    bank: np.ndarray  # other people with at least k photos
    drawn: np.ndarray  # of them, how many were compared before the sequential rule stopped
    exceedances: np.ndarray
    observed: np.ndarray  # the name's mean cosine on the person's first k photos

    def block(self, i: int) -> dict:
        return {"p_value": float(self.p_value[i]), "photos_used": int(self.photos_used[i]),
                "bank": int(self.bank[i]), "drawn": int(self.drawn[i]), "exceedances": int(self.exceedances[i])}


def photos_per_comparison(counts: np.ndarray, bank_needed: int) -> int:
    """K: the most photos per face such that at least min(bank_needed, n - 1) other people have that many. A
    person then uses min(their photos, K). Depends on photo counts only, never on scores."""
    counts = np.asarray(counts, dtype=np.int64)
    n = len(counts)
    if n <= 1:
        return int(counts.max(initial=1))
    need = min(int(bank_needed), n - 1)
    best = 1
    for k in range(1, int(counts.max()) + 1):
        if int((counts >= k).sum()) - 1 >= need:
            best = k
    return best


def prefix_means(image_emb: np.ndarray, owner: np.ndarray, people: np.ndarray, k: int) -> np.ndarray:
    """[len(people), d] the mean embedding of each person's first k photos (owner grouped by person, in order)."""
    owner = np.asarray(owner, dtype=np.int64)
    n_people = int(owner.max(initial=-1)) + 1
    start = np.searchsorted(owner, np.arange(n_people))
    idx = start[people][:, None] + np.arange(k)[None, :]
    return image_emb[idx].astype(np.float64).mean(axis=1)


def face_side(name_text: np.ndarray, image_emb: np.ndarray, owner: np.ndarray, bank_needed: int, seed: int = 0,
              h: int = H_EXCEEDANCES, block: int = FIRST_BLOCK) -> FaceSide:
    """Every person's face-side p-value. name_text [n_people, d]: each person's name embedding averaged over the
    prompts (not re-normalised: the mean of the cosines is the cosine with the mean); image_emb [n_images, d] with
    `owner` grouped by person. People are compared in groups of equal k; each group's bank is one seeded order of
    everyone with at least k photos, the person themselves skipped."""
    owner = np.asarray(owner, dtype=np.int64)
    n = len(name_text)
    counts = np.bincount(owner, minlength=n)
    k_all = np.minimum(counts, photos_per_comparison(counts, bank_needed))
    p = np.ones(n)
    drawn, exceed, bank = (np.zeros(n, np.int64) for _ in range(3))
    observed = np.full(n, np.nan)
    for k in np.unique(k_all[counts > 0]):
        who = np.flatnonzero((k_all == k) & (counts > 0))
        members = np.flatnonzero(counts >= k)
        order = members[np.random.default_rng([seed, int(k)]).permutation(len(members))]
        faces = prefix_means(image_emb, owner, order, int(k))
        text = np.asarray(name_text[who], dtype=np.float64)
        own = np.einsum("nd,nd->n", text, prefix_means(image_emb, owner, who, int(k))).astype(np.float32)
        state = SequentialPValues(np.zeros(len(who)), np.zeros(len(who)), len(members) - 1, h)
        start, size = 0, block
        while start < len(order) and len(state.active()):
            live = state.active()
            stop = min(start + size, len(order))
            scores = (text[live] @ faces[start:stop].T).astype(np.float32)
            state.add(live, scores >= own[live, None], order[None, start:stop] != who[live, None])
            start, size = stop, size * 2
        p[who], drawn[who], exceed[who] = state.p_values(), state.drawn_, state.exceed_
        bank[who], observed[who] = len(members) - 1, own
    return FaceSide(p, k_all, bank, drawn, exceed, observed)


def face_side_full(name_text, image_emb, owner, bank_needed: int, seed: int = 0, h: int = H_EXCEEDANCES) -> np.ndarray:
    """The slow twin for the tests: every person against every face of their bank, in the same order, then the
    sequential rule walked draw by draw (`sequential.sequential_p_values`)."""
    from idia.attack.decide.sequential import sequential_p_values
    owner = np.asarray(owner, dtype=np.int64)
    n = len(name_text)
    counts = np.bincount(owner, minlength=n)
    k_all = np.minimum(counts, photos_per_comparison(counts, bank_needed))
    out = np.ones(n)
    for i in range(n):
        k = int(k_all[i])
        members = np.flatnonzero(counts >= k)
        order = members[np.random.default_rng([seed, k]).permutation(len(members))]
        text = np.asarray(name_text[i], np.float64)
        scores = [float(np.float32(text @ prefix_means(image_emb, owner, np.array([j]), k)[0]))
                  if j != i else np.nan for j in order]
        own = float(np.float32(text @ prefix_means(image_emb, owner, np.array([i]), k)[0]))
        out[i] = sequential_p_values([own], [scores], 0, len(members) - 1, h)[0]
    return out
