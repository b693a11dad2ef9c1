"""The per-person question's own pieces: each photo's similarity with its own person's name (the one candidate not
shared by everyone), and the name-prior control the per-person question would otherwise never ask."""

from __future__ import annotations

import numpy as np

from idia.attack.decide.evidence import rounded


def own_name_similarity(encoder, templates, person_names, image_emb, owner, perturbation=None,
                        block: int = 2048, prior: "OthersSample | None" = None,
                        name_means: np.ndarray | None = None) -> np.ndarray:
    """[n_images, n_prompts] cosine of each photo with its own person's name in every prompt, for the
    per-person question. People are taken in blocks, so text memory is bounded and each block is cached.
    With `prior`, each block's names are also asked of a fixed sample of other people's photos (the name-prior
    control, which the per-person question would otherwise never ask). With `name_means` [n_people, d], each
    person's name embedding averaged over the prompts is written there (the face side and the further
    distractors compare with it)."""
    out = np.empty((len(image_emb), len(templates)), dtype=np.float32)
    starts = np.searchsorted(owner, np.arange(0, len(person_names) + 1))  # owner is grouped by person
    for s in range(0, len(person_names), block):
        e = min(s + block, len(person_names))
        text = encoder.prompt_embeddings(templates, person_names[s:e])  # [P, B, d]
        if perturbation is not None:
            text = perturbation.transform_text(text)
        rows = slice(starts[s], starts[e])
        mine = text[:, owner[rows] - s, :]  # [P, n_rows, d]
        out[rows] = np.einsum("pnd,nd->np", mine, image_emb[rows])
        if prior is not None:
            prior.add_block(s, text)
        if name_means is not None:
            name_means[s:e] = text.mean(axis=0)
    return out


class OthersSample:
    """The name-prior control for the per-person question: every audited name asked of the same seeded sample of
    photos (never the person's own), among that person's distractors (their group's list).

    Within one photo and prompt all candidates share the softmax's denominator, so comparing two candidates'
    mean log-probabilities is comparing their mean logits: the ranks (and so the p-values) need only mean logits,
    and each group's distractors' are computed once for the whole group."""

    def __init__(self, image_emb, owner, distractor_texts, logit_scale: float, n_people: int,
                 group_of: np.ndarray | None = None, size: int = 256, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.rows = np.sort(rng.choice(len(image_emb), size=min(size, len(image_emb)), replace=False))
        self.owner = owner[self.rows]
        self.images = image_emb[self.rows]
        self.scale = logit_scale
        self.group_of = np.zeros(n_people, np.int64) if group_of is None else np.asarray(group_of, np.int64)
        lse, top, row_mean = [], [], []
        for text in distractor_texts:  # [P, D, d] per group
            n_prompts, n_d, _ = text.shape
            d_logits = logit_scale * (self.images @ text.reshape(n_prompts * n_d, -1).T).reshape(
                len(self.rows), n_prompts, n_d)  # [K, P, D]
            lse.append(np.logaddexp.reduce(d_logits.astype(np.float64), axis=2))  # [K, P]
            top.append(d_logits.max(axis=2))
            row_mean.append(d_logits.mean(axis=1).astype(np.float64))  # [K, D] mean over prompts
        self.lse_d, self.max_d = np.stack(lse), np.stack(top)  # [G, K, P]
        self.d_row_mean = np.stack(row_mean)  # [G, K, D]
        self.d_sum = self.d_row_mean.sum(axis=1)  # [G, D]
        self.pick = np.full(n_people, np.nan)
        self.mean_lp = np.full(n_people, np.nan)
        self.mean_logit = np.full(n_people, np.nan)
        self.n_d = n_d

    def add_block(self, start: int, text) -> None:
        x = self.scale * np.einsum("pbd,kd->kpb", text, self.images)  # [K, P, B]
        people = start + np.arange(x.shape[2])
        valid = (self.owner[:, None] != people[None, :])[:, None, :]  # [K, 1, B]
        count = valid.sum(axis=(0, 1)) * x.shape[1]
        groups = self.group_of[people]
        for g in np.unique(groups):
            cols = groups == g
            xg, vg = x[:, :, cols], valid[:, :, cols]
            lp = xg - np.logaddexp(self.lse_d[g][:, :, None], xg)
            with np.errstate(invalid="ignore", divide="ignore"):
                self.pick[people[cols]] = ((xg > self.max_d[g][:, :, None]) & vg).sum(axis=(0, 1)) / count[cols]
                self.mean_lp[people[cols]] = np.where(vg, lp, 0).sum(axis=(0, 1)) / count[cols]
                self.mean_logit[people[cols]] = np.where(vg, xg, 0).sum(axis=(0, 1)) / count[cols]

    def distractor_means(self, person: int) -> np.ndarray:
        """[D] the person's distractors' mean logits on the sample without this person's own photos."""
        g = self.group_of[person]
        own = self.owner == person
        if not own.any():
            return self.d_sum[g] / len(self.rows)
        return (self.d_sum[g] - self.d_row_mean[g][own].sum(axis=0)) / max(1, len(self.rows) - int(own.sum()))

    def blocks(self, own_scores: np.ndarray, alpha: float) -> list[dict]:
        """Each person's `prior` block; own_scores [n_people, D + 1] their mean log-probabilities on their own
        photos (distractors, then their own name)."""
        out = []
        for i in range(len(self.pick)):
            d_means = self.distractor_means(i)
            x = self.mean_logit[i]
            p_others = (1 + np.sum(d_means >= x)) / (1 + self.n_d)
            own = own_scores[i]
            corrected = own[:-1] - d_means
            p_corrected = (1 + np.sum(corrected >= own[-1] - x)) / (1 + self.n_d)
            out.append({"pick_rate_others": rounded(self.pick[i]), "mean_score_others": rounded(self.mean_lp[i]),
                        "p_value_others": rounded(p_others, 8), "prior_alone_flags": bool(p_others <= alpha),
                        "corrected_score": rounded(own[-1] - self.mean_lp[i]), "corrected_p_value": rounded(p_corrected, 8),
                        "sample": f"{len(self.rows)} photos drawn at random from everyone's (never the person's own)"})
        return out
