"""Further distractors, encoded only when someone needs them: the sequential p-value's supply of null names.

`FurtherNames(encoder, templates, question, n)` is the callable `attack.decide.permutation.extend_name_side` asks
for group g's further distractors start..stop; each block's prompts go through the encoder's text cache (a rerun
encodes nothing) and come back averaged over the prompts, which is all the comparison needs.
"""

from __future__ import annotations

import numpy as np


class FurtherNames:
    """Group g's further distractors (`Question.further`), drawn once, encoded block by block on request."""

    def __init__(self, encoder, templates, question, n: int, perturbation=None):
        self.encoder = encoder
        self.templates = list(templates)
        self.question = question
        self.n = max(0, int(n))
        self.perturbation = perturbation
        self.names_: dict[int, list[str]] = {}
        self.used_: dict[int, int] = {}

    def names(self, g: int) -> list[str]:
        if g not in self.names_:
            self.names_[g] = self.question.further(g, self.n) if self.n else []
        return self.names_[g]

    def __call__(self, g: int, start: int, stop: int) -> np.ndarray:
        names = self.names(g)[start:stop]
        if not names:
            return np.zeros((0, self.encoder.loaded.embed_dim), dtype=np.float32)
        text = self.encoder.prompt_embeddings(self.templates, names)  # [P, B, d]
        if self.perturbation is not None:
            text = self.perturbation.transform_text(text)
        self.used_[g] = max(self.used_.get(g, 0), start + len(names))
        return text.mean(axis=0)

    def describe(self) -> list[dict]:
        """Per group: how many further distractors were available and how many were encoded."""
        return [{"group": self.question.groups[g].id, "available": len(self.names_[g]),
                 "encoded": self.used_.get(g, 0)} for g in sorted(self.names_)]
