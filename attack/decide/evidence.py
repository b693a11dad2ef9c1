"""The Identity Inference Attack's rule, on embeddings: per-prompt argmax → per-prompt majority → score.

Hintersdorf et al. (JAIR 2024): for every image and prompt template the model names the candidate whose prompt
embedding is most similar (no averaging over prompts); per prompt, the name most of the person's images agree on
is that prompt's vote, and a tie for the top count gives no vote; the score is the number of prompts voting for
the true name, and the person counts as a member if the score reaches tau (1 in the paper).

Ties are ties wherever they occur: an image whose top similarity is shared by two or more names names nobody for
that prompt (NO_VOTE, never the first of them), a prompt whose images named nobody is a tie, and a photo whose
best names by mean similarity tie has no first choice (`top_tie`).

Beside the paper's discrete score we keep continuous evidence of the same predictions: the softmax
log-probability of the true name (with the model's own logit scale) and its rank, averaged over images and
prompts. Everything is computed for all people at once, in chunks of images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NO_VOTE = -1


@dataclass
class Evidence:
    """Everything the model said about a set of people, image by image and prompt by prompt.

    Image arrays are [n_images, n_prompts] (or [n_images, k] for top-k); person arrays are [n_people, ...]."""

    owner: np.ndarray  # [n_images] index of the person each image shows
    true_index: np.ndarray  # [n_people] candidate index of each person's true name
    prediction: np.ndarray  # [n_images, n_prompts] argmax candidate
    prediction_similarity: np.ndarray
    true_similarity: np.ndarray
    true_rank: np.ndarray  # 1 = the true name was the model's answer
    true_log_prob: np.ndarray
    top_index: np.ndarray  # [n_images, k] by similarity averaged over prompts
    top_similarity: np.ndarray
    vote: np.ndarray  # [n_people, n_prompts] majority candidate, NO_VOTE on a tie
    vote_count: np.ndarray  # [n_people, n_prompts] images agreeing with the top name
    tie: np.ndarray  # [n_people, n_prompts] bool
    score: np.ndarray  # [n_people] prompts whose majority is the true name (0..n_prompts)
    mean_log_prob: np.ndarray  # [n_people] the continuous membership score
    mean_rank: np.ndarray
    mean_prob: np.ndarray
    # [n_images, n_candidates] mean over prompts of log softmax: every candidate scored as the true name is, for
    # the candidate-permutation test and the controls (attack.permutation, attack.controls)
    image_candidate_log_prob: np.ndarray | None = None
    top_tie: np.ndarray | None = None  # [n_images] the first two names by mean similarity score exactly alike

    @property
    def n_prompts(self) -> int:
        return int(self.prediction.shape[1])


def majority_votes(owner: np.ndarray, prediction: np.ndarray, n_people: int, n_candidates: int):
    """Per person and prompt: the name most images agree on, or NO_VOTE if two or more names tie.

    Images whose own answer was a tie (prediction NO_VOTE) name nobody and are not counted; a prompt for which
    every image of the person tied is itself a tie. Vectorised over everyone: count (person, prompt, name)
    triples, find each (person, prompt) group's top count and how many names reach it. Returns (vote,
    vote_count, tie)."""
    n_prompts = prediction.shape[1]
    prediction = np.asarray(prediction, dtype=np.int64)
    group = owner[:, None].astype(np.int64) * n_prompts + np.arange(n_prompts)[None, :]
    answered = prediction != NO_VOTE
    keys, counts = np.unique((group * n_candidates + prediction)[answered], return_counts=True)
    grp, cand = keys // n_candidates, keys % n_candidates
    n_groups = n_people * n_prompts
    top = np.zeros(n_groups, dtype=np.int64)
    np.maximum.at(top, grp, counts)
    at_top = counts == top[grp]
    n_at_top = np.bincount(grp[at_top], minlength=n_groups)
    vote = np.full(n_groups, NO_VOTE, dtype=np.int64)
    vote[grp[at_top]] = cand[at_top]
    tie = n_at_top > 1
    vote[tie] = NO_VOTE
    vote[n_at_top == 0] = NO_VOTE  # a person without images, or whose every image tied
    asked = np.bincount(group.ravel(), minlength=n_groups) > 0
    tie |= asked & (n_at_top == 0)  # images there, none of them named anyone: a tie, not an answer
    shape = (n_people, n_prompts)
    return vote.reshape(shape), top.reshape(shape), tie.reshape(shape)


def paper_score(vote: np.ndarray, true_index: np.ndarray) -> np.ndarray:
    """Number of prompts whose majority vote is the true name."""
    return (vote == true_index[:, None]).sum(axis=1)


def rounded(x, digits: int = 6) -> float | None:
    """A float for the record: rounded, or None (JSON null) when not finite."""
    x = float(x)
    return round(x, digits) if np.isfinite(x) else None


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def gather_evidence(image_emb: np.ndarray, owner: np.ndarray, true_index: np.ndarray, text_emb,
                    logit_scale: float, top_k: int = 5, chunk: int = 256,
                    own_similarity: np.ndarray | None = None, group_of: np.ndarray | None = None) -> Evidence:
    """Ask the model about every image, every prompt and every candidate, and tally the answers.

    image_emb [n_images, d] and text_emb [n_prompts, n_candidates, d] are L2-normalised; owner[i] is the person
    image i shows; true_index[p] is person p's true name among the candidates.

    Per-person question: with `own_similarity` [n_images, n_prompts] (each image's cosine with its own person's
    name in every prompt), text_emb holds only the shared distractors and each person's candidates are those
    distractors followed by their own name, at index n_distractors (which `true_index` must then hold). The work
    per image is the same however many people are audited. With `group_of` [n_people], text_emb is a list of such
    distractor blocks, one per group of people asked among the same list, and each image meets its person's."""
    n_images = image_emb.shape[0]
    texts = list(text_emb) if group_of is not None else [text_emb]
    n_prompts, n_shared, _ = texts[0].shape
    n_candidates = n_shared + (1 if own_similarity is not None else 0)
    n_people = len(true_index)
    owner = np.asarray(owner, dtype=np.int64)
    true_index = np.asarray(true_index, dtype=np.int64)
    k = min(top_k, n_candidates)
    pred = np.empty((n_images, n_prompts), dtype=np.int64)
    pred_sim = np.empty((n_images, n_prompts), dtype=np.float32)
    true_sim = np.empty((n_images, n_prompts), dtype=np.float32)
    true_rank = np.empty((n_images, n_prompts), dtype=np.int64)
    true_lp = np.empty((n_images, n_prompts), dtype=np.float32)
    top_idx = np.empty((n_images, k), dtype=np.int64)
    top_sim = np.empty((n_images, k), dtype=np.float32)
    cand_lp = np.empty((n_images, n_candidates), dtype=np.float32)
    top_tie = np.zeros(n_images, dtype=bool)
    flat_text = [t.reshape(n_prompts * n_shared, -1).T for t in texts]  # [d, P*C] each
    image_group = np.asarray(group_of, dtype=np.int64)[owner] if len(texts) > 1 else None
    for s in range(0, n_images, chunk):
        e = slice(s, min(s + chunk, n_images))
        if image_group is None:
            sims = (image_emb[e] @ flat_text[0]).reshape(-1, n_prompts, n_shared)  # [b, P, C]
        else:
            sims = np.empty((e.stop - e.start, n_prompts, n_shared), dtype=np.result_type(image_emb, texts[0]))
            for g in np.unique(image_group[e]):
                rows = image_group[e] == g
                sims[rows] = (image_emb[e][rows] @ flat_text[g]).reshape(-1, n_prompts, n_shared)
        if own_similarity is not None:
            sims = np.concatenate([sims, own_similarity[e][:, :, None].astype(sims.dtype)], axis=2)
        rows = np.arange(sims.shape[0])
        t = true_index[owner[e]]
        top_sim_e = sims.max(axis=2)
        pred[e] = np.where((sims == top_sim_e[:, :, None]).sum(axis=2) > 1, NO_VOTE, sims.argmax(axis=2))
        pred_sim[e] = top_sim_e
        ts = sims[rows, :, t]  # [b, P]
        true_sim[e] = ts
        true_rank[e] = 1 + (sims > ts[:, :, None]).sum(axis=2)
        lp = log_softmax(logit_scale * sims, axis=2)
        true_lp[e] = lp[rows, :, t]
        cand_lp[e] = lp.mean(axis=1)
        mean_sims = sims.mean(axis=1)  # [b, C]
        part = np.argpartition(-mean_sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(mean_sims, part, axis=1), axis=1, kind="stable")
        top_idx[e] = np.take_along_axis(part, order, axis=1)
        top_sim[e] = np.take_along_axis(mean_sims, top_idx[e], axis=1)
        top_tie[e] = (mean_sims == top_sim[e][:, :1]).sum(axis=1) > 1
    vote, vote_count, tie = majority_votes(owner, pred, n_people, n_candidates)
    per_person = np.bincount(owner, minlength=n_people) * n_prompts

    def person_mean(values):
        sums = np.bincount(owner, weights=values.sum(axis=1).astype(np.float64), minlength=n_people)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(per_person > 0, sums / np.maximum(per_person, 1), np.nan)

    return Evidence(owner=owner, true_index=true_index, prediction=pred, prediction_similarity=pred_sim,
                    true_similarity=true_sim, true_rank=true_rank, true_log_prob=true_lp, top_index=top_idx,
                    top_similarity=top_sim, vote=vote, vote_count=vote_count, tie=tie,
                    score=paper_score(vote, true_index), mean_log_prob=person_mean(true_lp),
                    mean_rank=person_mean(true_rank.astype(np.float64)),
                    mean_prob=person_mean(np.exp(true_lp.astype(np.float64))), image_candidate_log_prob=cand_lp,
                    top_tie=top_tie)
