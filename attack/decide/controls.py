"""Controls for the per-person evidence: does the model name this face, or does it merely like this name?
And would the verdict survive a different draw of the person's photos?

name_prior  the blind baseline: how often and how strongly the model picks each audited name for OTHER people's
            photos, the permutation p-value those photos alone would give the name, and a prior-corrected score
            (every candidate minus its own mean score on others' photos), with its permutation p-value.
stability   the person's photos resampled with replacement: the share of resamples that reach the same verdict
            (permutation test and the paper's rule), a percentile interval for the continuous score, the share
            of prompt votes ties void, and how many photos would make the verdict stable.

Inputs are the arrays the decide stage holds: image_scores [n_images, C] (`attack.permutation.
candidate_log_probs`), predictions [n_images, P] (argmax candidate per image and prompt), owner [n_images],
true_index [n_people]. Everything is vectorised over the [n_people, C] matrix; loops run over resamples only.
"""

from __future__ import annotations

import numpy as np

from idia.attack.decide.evidence import majority_votes, paper_score, rounded
from idia.attack.decide.permutation import permutation_p_values, person_candidate_scores

TIE_WARNING_SHARE = 0.10
STABLE_AGREEMENT = 0.90
DEFAULT_STABLE_SIZES = (5, 10, 20, 30, 50, 100)


def _person_sums(image_scores, owner, n_people):
    """[n_people, C] sums and [n_people] image counts (float64)."""
    counts = np.bincount(owner, minlength=n_people).astype(np.float64)
    means = person_candidate_scores(image_scores, owner, n_people)
    sums = np.where(counts[:, None] > 0, means * counts[:, None], 0.0)
    return sums, counts


def name_prior(image_scores, predictions, owner, true_index, alpha: float = 0.01, distractor_mask=None) -> dict:
    """The name-prior control for each audited person (arrays of length n_people).

    "Other people's photos" are all images not of the person (other audited people, and reference people when
    they are among the images); their candidate scores are averaged image by image, as one pseudo-person.

    pick_rate_others   share of (other image, prompt) answers that are this person's name
    mean_score_others  mean log-probability of this name on others' photos
    p_value_others     permutation p-value of this name computed from others' photos alone
    prior_alone_flags  p_value_others <= alpha: the name's prior alone would reach the verdict
    corrected_score    own mean score minus mean score on others' photos
    corrected_p_value  permutation p-value with every candidate corrected by its own prior
    """
    image_scores = np.asarray(image_scores)
    owner = np.asarray(owner, dtype=np.int64)
    true_index = np.asarray(true_index, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    n_people, n_cand = len(true_index), image_scores.shape[1]
    rows = np.arange(n_people)
    sums, counts = _person_sums(image_scores, owner, n_people)
    total, n_images = sums.sum(axis=0), float(len(owner))
    n_other = n_images - counts
    with np.errstate(invalid="ignore", divide="ignore"):
        others_mean = (total[None, :] - sums) / n_other[:, None]  # [n_people, C]
        own_mean = sums / counts[:, None]
    n_prompts = predictions.shape[1]
    answered = predictions >= 0  # a tied answer (NO_VOTE) picks no name
    picks = np.bincount((owner[:, None] * n_cand + predictions)[answered],
                        minlength=n_people * n_cand).reshape(n_people, n_cand)
    picks_total = picks.sum(axis=0)
    picks_others = picks_total[true_index] - picks[rows, true_index]
    with np.errstate(invalid="ignore", divide="ignore"):
        pick_rate = np.where(n_other > 0, picks_others / (n_other * n_prompts), np.nan)
    p_others = permutation_p_values(others_mean, true_index, distractor_mask)
    corrected = own_mean - others_mean
    p_corrected = permutation_p_values(corrected, true_index, distractor_mask)
    return {
        "pick_rate_others": pick_rate,
        "mean_score_others": others_mean[rows, true_index],
        "p_value_others": p_others,
        "prior_alone_flags": p_others <= alpha,
        "corrected_score": corrected[rows, true_index],
        "corrected_p_value": p_corrected,
    }


def resampled_verdict_inputs(image_scores, predictions, rows, group, n_groups, true_index_of_group,
                             distractor_mask=None):
    """For images `rows` assigned to groups `group` (a resample: rows may repeat), each group's continuous
    score of its true name, its permutation p-value, its paper score and its tie count.

    The one place stability computes verdicts; the property tests pit it against a plain loop."""
    scores = person_candidate_scores(np.asarray(image_scores)[rows], group, n_groups)
    p = permutation_p_values(scores, true_index_of_group, distractor_mask)
    vote, _, tie = majority_votes(group, np.asarray(predictions)[rows], n_groups, scores.shape[1])
    true_score = scores[np.arange(n_groups), true_index_of_group]
    return true_score, p, paper_score(vote, true_index_of_group), tie.sum(axis=1)


def _bootstrap_rows(images_of: list[np.ndarray], size_of: np.ndarray, rng: np.random.Generator):
    """One resample: for each person, size_of[p] of their image rows drawn with replacement."""
    rows, group = [], []
    for p, imgs in enumerate(images_of):
        if len(imgs) == 0 or size_of[p] == 0:
            continue
        rows.append(imgs[rng.integers(len(imgs), size=int(size_of[p]))])
        group.append(np.full(int(size_of[p]), p, dtype=np.int64))
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(rows), np.concatenate(group)


def _agreement(image_scores, predictions, images_of, size_of, true_index, full_perm, full_paper, n_resamples,
               rng, alpha, tau, distractor_mask):
    n = len(images_of)
    agree_perm = np.zeros(n)
    agree_paper = np.zeros(n)
    scores = np.empty((n_resamples, n))
    for r in range(n_resamples):
        rows, group = _bootstrap_rows(images_of, size_of, rng)
        s, p, paper, _ = resampled_verdict_inputs(image_scores, predictions, rows, group, n, true_index,
                                                  distractor_mask)
        agree_perm += (p <= alpha) == full_perm
        agree_paper += (paper >= tau) == full_paper
        scores[r] = s
    return agree_perm / n_resamples, agree_paper / n_resamples, scores


def stability(image_scores, predictions, owner, true_index, n_resamples: int = 20, size: int | None = None,
              seed: int = 0, alpha: float = 0.01, tau: int = 1, distractor_mask=None,
              stable_sizes=DEFAULT_STABLE_SIZES) -> dict:
    """How much each person's verdicts depend on which photos were used (arrays of length n_people).

    Each resample draws `size` photos (default: as many as the person has) with replacement from the person's
    own; verdicts are recomputed by the permutation test (p <= alpha) and the paper's rule (per-prompt majority,
    ties give no vote, score >= tau). For people whose agreement falls below 0.9 under either rule, resamples at
    the larger sizes in `stable_sizes` estimate how many photos of the same kind would make the verdict agree
    with the full set's in 90% of draws (a bootstrap extrapolation, not a guarantee); -1 means "more than the
    largest size tried". A seeded local generator makes it deterministic."""
    image_scores = np.asarray(image_scores)
    predictions = np.asarray(predictions, dtype=np.int64)
    owner = np.asarray(owner, dtype=np.int64)
    true_index = np.asarray(true_index, dtype=np.int64)
    n_people = len(true_index)
    rng = np.random.default_rng(seed)
    order = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[order], np.arange(n_people + 1))
    images_of = [order[bounds[p]:bounds[p + 1]] for p in range(n_people)]
    counts = np.diff(bounds)

    full_score, full_p, full_paper_score, full_ties = resampled_verdict_inputs(
        image_scores, predictions, np.arange(len(owner)), owner, n_people, true_index, distractor_mask)
    full_perm, full_paper = full_p <= alpha, full_paper_score >= tau
    n_prompts = predictions.shape[1]
    tie_share = full_ties / n_prompts

    size_of = counts if size is None else np.where(counts > 0, size, 0)
    agree_perm, agree_paper, scores = _agreement(image_scores, predictions, images_of, size_of, true_index,
                                                 full_perm, full_paper, n_resamples, rng, alpha, tau,
                                                 distractor_mask)
    lo, hi = np.nanpercentile(scores, [2.5, 97.5], axis=0) if n_resamples else (full_score, full_score)

    photos_for_stable = _photos_for_stable(image_scores, predictions, images_of, counts, size_of, true_index,
                                           full_perm, full_paper, np.minimum(agree_perm, agree_paper), n_resamples,
                                           rng, alpha, tau, distractor_mask, stable_sizes)
    warnings, texts = _stability_notes(tie_share, np.minimum(agree_perm, agree_paper), photos_for_stable,
                                       max(stable_sizes) if stable_sizes else 0)
    return {
        "n_resamples": n_resamples,
        "size": size_of,
        "verdict_permutation": full_perm,
        "verdict_paper": full_paper,
        "agreement_permutation": agree_perm,
        "agreement_paper": agree_paper,
        "score_interval": np.stack([lo, hi], axis=1),
        "tie_share": tie_share,
        "photos_for_stable": photos_for_stable,
        "photos_for_stable_text": texts,
        "warnings": warnings,
    }


def _photos_for_stable(image_scores, predictions, images_of, counts, size_of, true_index, full_perm, full_paper,
                       agreement, n_resamples, rng, alpha, tau, distractor_mask, stable_sizes) -> np.ndarray:
    """For people whose verdicts agree in fewer than 90% of resamples, the smallest of `stable_sizes` at which
    resamples of that many photos would agree in 90% (a bootstrap extrapolation); -1: more than the largest."""
    unstable = (agreement < STABLE_AGREEMENT) & (counts > 0)
    photos_for_stable = np.where(counts > 0, np.maximum(size_of, 0), 0).astype(np.int64)
    photos_for_stable[unstable] = -1
    idx = np.flatnonzero(unstable)
    if not len(idx):
        return photos_for_stable
    sub_images = [images_of[p] for p in idx]
    for m in sorted(s for s in stable_sizes):
        todo = idx[(photos_for_stable[idx] == -1) & (size_of[idx] < m)]
        if len(todo) == 0:
            continue
        pos = np.searchsorted(idx, todo)
        sub = [sub_images[k] for k in pos]
        a_perm, a_paper, _ = _agreement(image_scores, predictions, sub, np.full(len(sub), m), true_index[todo],
                                        full_perm[todo], full_paper[todo], n_resamples, rng, alpha, tau,
                                        None if distractor_mask is None or np.ndim(distractor_mask) == 1
                                        else np.asarray(distractor_mask)[todo])
        reached = np.minimum(a_perm, a_paper) >= STABLE_AGREEMENT
        photos_for_stable[todo[reached]] = m
    return photos_for_stable


def _stability_notes(tie_share, agreement, photos_for_stable, largest: int) -> tuple[list[list[str]], list[str]]:
    """Per person: the warnings (ties, unstable verdict) and the photos needed, in words."""
    warnings: list[list[str]] = []
    texts: list[str] = []
    for p in range(len(tie_share)):
        w = []
        if tie_share[p] > TIE_WARNING_SHARE:
            w.append(f"ties voided {tie_share[p]:.0%} of the prompt votes (more than {TIE_WARNING_SHARE:.0%})")
        if agreement[p] < STABLE_AGREEMENT:
            w.append(f"the verdict is unstable: only {agreement[p]:.0%} of resamples of the photos reach the same "
                     "verdict")
        warnings.append(w)
        texts.append(f"more than {largest}" if photos_for_stable[p] == -1 else str(int(photos_for_stable[p])))
    return warnings, texts


def evidence_blocks(image_scores, predictions, owner, true_index, alpha: float = 0.01, tau: int = 1,
                    distractor_mask=None, aliases: list[list[int]] | None = None,
                    candidate_names: list[str] | None = None, n_resamples: int = 20, seed: int = 0) -> list[dict]:
    """Each person's JSON `evidence` block (shape in `attack.permutation`'s docstring), from the decide stage's
    arrays: permutation test, paper rule, aliases (candidate indices per person, the true name first), the
    name-prior control and stability. One call for the integrator; everything rounded for the record."""
    from idia.attack.decide.permutation import alias_p_values
    image_scores = np.asarray(image_scores)
    owner = np.asarray(owner, dtype=np.int64)
    true_index = np.asarray(true_index, dtype=np.int64)
    n_people = len(true_index)
    n_prompts = int(np.asarray(predictions).shape[1])
    person_scores = person_candidate_scores(image_scores, owner, n_people)
    p, rank, n_dist = permutation_p_values(person_scores, true_index, distractor_mask, return_rank=True)
    vote, _, _ = majority_votes(owner, np.asarray(predictions, dtype=np.int64), n_people, image_scores.shape[1])
    paper = paper_score(vote, true_index)
    prior = name_prior(image_scores, predictions, owner, true_index, alpha, distractor_mask)
    stab = stability(image_scores, predictions, owner, true_index, n_resamples=n_resamples, seed=seed,
                     alpha=alpha, tau=tau, distractor_mask=distractor_mask)
    alias_p = alias_best = None
    if aliases is not None:
        alias_p, alias_best, _ = alias_p_values(person_scores, aliases, distractor_mask)

    out = []
    for i in range(n_people):
        block = {
            "permutation": {"p_value": rounded(p[i], 8), "rank": int(rank[i]) + 1, "n_distractors": int(n_dist[i]),
                            "alpha": alpha, "flagged": bool(p[i] <= alpha),
                            "true_score": rounded(person_scores[i, true_index[i]])},
            "paper": {"score": int(paper[i]), "n_prompts": n_prompts, "tau": tau, "flagged": bool(paper[i] >= tau)},
            "aliases": None,
            "prior": {"pick_rate_others": rounded(prior["pick_rate_others"][i]),
                      "mean_score_others": rounded(prior["mean_score_others"][i]),
                      "p_value_others": rounded(prior["p_value_others"][i], 8),
                      "prior_alone_flags": bool(prior["prior_alone_flags"][i]),
                      "corrected_score": rounded(prior["corrected_score"][i]),
                      "corrected_p_value": rounded(prior["corrected_p_value"][i], 8)},
            "stability": {"n_resamples": n_resamples, "size": int(stab["size"][i]),
                          "agreement_permutation": rounded(stab["agreement_permutation"][i]),
                          "agreement_paper": rounded(stab["agreement_paper"][i]),
                          "score_interval": [rounded(v) for v in stab["score_interval"][i]],
                          "tie_share": rounded(stab["tie_share"][i]),
                          "photos_for_stable": None if stab["photos_for_stable"][i] < 0
                          else int(stab["photos_for_stable"][i]),
                          "photos_for_stable_text": stab["photos_for_stable_text"][i],
                          "warnings": stab["warnings"][i]},
        }
        if aliases is not None and len(aliases[i]) > 1:
            names_ = candidate_names or [str(c) for c in range(image_scores.shape[1])]
            block["aliases"] = {"tried": [names_[c] for c in aliases[i]], "best": names_[alias_best[i]],
                                "p_value": rounded(alias_p[i], 8),
                                "method": "max over the names within the permutation (exact)"}
        out.append(block)
    return out
