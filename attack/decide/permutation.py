"""The candidate-permutation test: evidence about one person that needs no reference people.

For each person we score every candidate name the same way the true name is scored (mean over the person's
photos and the prompts of the log-softmax over candidates). The p-value is the true name's rank among the
made-up distractors:

    p = (1 + #{distractors scoring >= the true name}) / (1 + #distractors)

Assumption (the only one): a model that has not learned this person has no reason to rank their name above
names drawn the way the distractors were drawn, i.e. under the null the true name's score is exchangeable with
the distractors' scores. Then P(p <= alpha) <= alpha exactly, for any alpha, whatever the model (ties count
against the person, which only makes the test conservative).

Which candidates count as distractors. In a shared candidate list the other audited people's names are NOT
distractors: the model may know them (they are members, or hub names), and they were not drawn the way the
made-up distractors were, so they are not exchangeable with an unknown person's name. Counting them would mix a
different population into the reference set; only names drawn by the stated procedure (bundled lists or the
user's `--distractors` pool) carry the exchangeability the p-value rests on. So `distractor_mask` marks the
made-up distractors, and n_candidates in the formula is 1 + #distractors.

What breaks it: distractors drawn unlike the person's name (other gender, other origin, a different spelling
system): the model may favour the person's kind of name for their kind of face without knowing them. Hence
distractors balanced by sex by default, matched to the person where their gender or origin is given
(`--attributes`, `attack.names.make_matched_distractors`), and the name-prior control
(`attack.controls.name_prior`), which shows whether the model favours the name for everyone's face.

JSON shape (read by templates/_evidence_takedown.html and templates/_evidence_audit.html)
----------------------------------------------------------------------------------------
results.json gains, beside the existing blocks:

  rule: {decided_by: "paper" | "permutation" | "calibrated-continuous", alpha: float,
         p_value_method: str, assumption: str, breaks_if: str, ...existing keys}
  distractors: {how: "balanced" | "uniform" | "matched" | "file" | "candidates file", description: str (plain
                words), source: str, n: int, seed: int, gender: str | null, origin: str | null, balance_sex: bool,
                counts: {gender: {f: int, m: int, u: int}, origin: {region: int}},
                excluded: str,          # plain words: which names were not counted as distractors
                groups: [{id: "default" | "gender=f,origin=east_asia" | ..., people: int, ...the keys above}]}
                # every list drawn (per person with --attributes: one per given gender and origin); the top level
                # repeats the first group's keys
  study: {plot: "data:image/png;base64,..." | null, summary: str} | absent   (world study, optional)

and each person gains `distractor_group` (the id of their group) and an `evidence` block:

  evidence: {
    permutation: {p_value: float, rank: int, n_distractors: int, alpha: float, flagged: bool,
                  true_score: float},
    paper: {score: int, n_prompts: int, tau: int, flagged: bool},
    aliases: {tried: [str], best: str, p_value: float, method: str} | null,
    prior: {pick_rate_others: float, mean_score_others: float, p_value_others: float,
            prior_alone_flags: bool, corrected_score: float, corrected_p_value: float},
    stability: {n_resamples: int, size: int, agreement_permutation: float, agreement_paper: float,
                score_interval: [float, float], tie_share: float, photos_for_stable: int | null,
                photos_for_stable_text: str, warnings: [str]},
  }
"""

from __future__ import annotations

import math

import numpy as np

from idia.attack.decide.evidence import log_softmax

ASSUMPTION = ("a model that has not learned this person has no reason to rank their name above names drawn the "
              "way the distractors were drawn")
BREAKS_IF = ("the distractors differ systematically from the person's name (gender, origin, spelling, fame), or "
             "the model favours this name for every face (see the name-prior control)")
P_VALUE_METHOD = ("candidate permutation: (1 + #{distractors scoring >= the true name}) / (1 + #distractors), "
                  "score = mean log-probability over photos and prompts")


def candidate_log_probs(image_emb: np.ndarray, text_emb: np.ndarray, logit_scale: float,
                        chunk: int = 256) -> np.ndarray:
    """[n_images, C]: per image and candidate, the mean over prompts of log softmax over candidates of
    logit_scale * cosine. The same arithmetic as `attack.idia.gather_evidence` (so its true column equals
    `true_log_prob.mean(axis=1)`), for every candidate; chunked over images to bound memory."""
    n_images = image_emb.shape[0]
    n_prompts, n_candidates, _ = text_emb.shape
    flat_text = text_emb.reshape(n_prompts * n_candidates, -1).T
    out = np.empty((n_images, n_candidates), dtype=np.float32)
    for s in range(0, n_images, chunk):
        e = slice(s, min(s + chunk, n_images))
        sims = (image_emb[e] @ flat_text).reshape(-1, n_prompts, n_candidates)
        out[e] = log_softmax(logit_scale * sims, axis=2).mean(axis=1)
    return out


def person_candidate_scores(image_scores: np.ndarray, owner: np.ndarray, n_people: int) -> np.ndarray:
    """[n_people, C]: each person's mean over their images (NaN for a person without images). One pass over
    the images (sorted by owner, summed with reduceat), so linear in images × candidates."""
    image_scores = np.asarray(image_scores)
    owner = np.asarray(owner, dtype=np.int64)
    n_cand = image_scores.shape[1]
    out = np.full((n_people, n_cand), np.nan, dtype=np.float64)
    if len(owner) == 0:
        return out
    order = np.argsort(owner, kind="stable")
    sorted_owner = owner[order]
    starts = np.flatnonzero(np.r_[True, sorted_owner[1:] != sorted_owner[:-1]])
    sums = np.add.reduceat(image_scores[order].astype(np.float64), starts, axis=0)
    people = sorted_owner[starts]
    counts = np.diff(np.r_[starts, len(owner)])
    out[people] = sums / counts[:, None]
    return out


def _mask_matrix(distractor_mask, n_people: int, n_cand: int) -> np.ndarray:
    if distractor_mask is None:
        return np.ones((n_people, n_cand), dtype=bool)
    mask = np.asarray(distractor_mask, dtype=bool)
    if mask.ndim == 1:
        mask = np.broadcast_to(mask, (n_people, n_cand))
    return mask.copy()


def permutation_p_values(person_scores: np.ndarray, true_index, distractor_mask=None,
                         return_rank: bool = False):
    """(1 + #{distractors >= true}) / (1 + #distractors) per person.

    distractor_mask: bool [C] or [n_people, C], True for the made-up distractors (default: every candidate but
    the person's own name). The true name never counts as its own distractor. A person whose true score is not
    finite (no photos) gets p = 1. With return_rank, also the count of distractors at or above the true name
    and the number of distractors."""
    scores = np.asarray(person_scores, dtype=np.float64)
    n_people, n_cand = scores.shape
    true_index = np.asarray(true_index, dtype=np.int64)
    mask = _mask_matrix(distractor_mask, n_people, n_cand)
    rows = np.arange(n_people)
    mask[rows, true_index] = False
    true = scores[rows, true_index]
    at_least = ((scores >= true[:, None]) & mask).sum(axis=1)
    n_dist = mask.sum(axis=1)
    p = (1.0 + at_least) / (1.0 + n_dist)
    p = np.where(np.isfinite(true), p, 1.0)
    if return_rank:
        return p, at_least, n_dist
    return p


def alias_p_values(person_scores: np.ndarray, alias_indices: list[list[int]], distractor_mask=None):
    """The max-statistic permutation test over a person's names: (p_values, best_candidate, best_position).

    A person known under k names (candidate indices alias_indices[p]) is scored by the best of them, T = max
    alias score. Under the null the k alias names are exchangeable with the distractors, so they behave like a
    random k-subset of the pool of k + D names; the exact permutation p-value is the share of k-subsets whose
    max reaches T:  p = 1 - C(m, k) / C(k + D, k),  m = #{pool names scoring < T}. This counts the observed
    subset (the +1 correction is built in), equals the single-name formula at k = 1, and, when no two names
    score exactly alike, is never larger than Bonferroni's k * min p, since it uses the dependence between the
    aliases' ranks exactly instead of a bound (aliases tied at the top with each other can make it weaker). Aliases are never counted as distractors."""
    scores = np.asarray(person_scores, dtype=np.float64)
    n_people, n_cand = scores.shape
    if len(alias_indices) != n_people:
        raise ValueError(f"alias_indices has {len(alias_indices)} rows for {n_people} people")
    mask = _mask_matrix(distractor_mask, n_people, n_cand)
    p_out = np.ones(n_people)
    best = np.full(n_people, -1, dtype=np.int64)
    best_pos = np.full(n_people, -1, dtype=np.int64)
    for i, aliases in enumerate(alias_indices):
        aliases = np.asarray(list(dict.fromkeys(int(a) for a in aliases)), dtype=np.int64)
        if len(aliases) == 0:
            continue
        row = scores[i]
        pos = int(np.argmax(row[aliases]))
        best[i], best_pos[i] = aliases[pos], pos
        t = row[aliases[pos]]
        if not math.isfinite(t):
            continue
        m_row = mask[i].copy()
        m_row[aliases] = False
        d = row[m_row]
        k = len(aliases)
        pool = k + len(d)
        below = int((d < t).sum()) + int((row[aliases] < t).sum())
        ratio = 1.0
        for j in range(k):  # C(below, k) / C(pool, k) as a product, exact and without overflow
            ratio *= max(below - j, 0) / (pool - j)
        p_out[i] = 1.0 - ratio
    return p_out, best, best_pos


def smallest_p_value(n_distractors: int, n_names: int = 1) -> float:
    """The smallest p-value the candidate-permutation test can give at all: a person known under `n_names` names
    (aliases) whose best name outranks every one of `n_distractors` made-up distractors gets k / (k + D) (1 / (1 +
    D) for one name; see `alias_p_values`). A level below it can never flag anyone, however well the model
    knows them. (Sequential p-values, when added, have their own floor and extend this.)"""
    if n_names < 1:
        raise ValueError("a person has at least one name")
    return n_names / (n_names + max(int(n_distractors), 0))


class PermutationTest:
    """Flag a person when the candidate-permutation p-value is at most `alpha`.

    scikit-learn manner, but with nothing to fit: the null distribution is the person's own distractors, not
    reference people, so there is no `fit`."""

    def __init__(self, alpha: float = 0.01):
        self.alpha = alpha

    def p_values(self, person_scores, true_index, distractor_mask=None) -> np.ndarray:
        return permutation_p_values(person_scores, true_index, distractor_mask)

    def decide(self, p) -> np.ndarray:
        return np.asarray(p, dtype=np.float64) <= self.alpha

    def smallest_p(self, n_distractors: int, n_names: int = 1) -> float:
        """The strongest evidence the list allows; alpha below it can never flag anyone."""
        return smallest_p_value(n_distractors, n_names)

    def describe(self) -> dict:
        return {"decided_by": "permutation", "alpha": self.alpha, "p_value_method": P_VALUE_METHOD,
                "assumption": ASSUMPTION, "breaks_if": BREAKS_IF,
                "explanation": (f"flagged when the true name outranks enough made-up distractors that a model "
                                f"which never learned the person would do so with probability at most "
                                f"{self.alpha}")}
