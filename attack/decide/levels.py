"""At what level a p-value rule flags: one person at a time (alpha), or many at once (false-discovery rate q).

An audit of more than one person controls the false-discovery rate by default (`fdr`: Benjamini-Hochberg at
--fdr 0.05): the share of false alarms among the flagged, which is what a list of "identified" people promises.
An explicit --alpha asks the per-person question instead (each person flagged at p <= alpha, as a takedown does);
a single person is always asked that way. The level also says how fine the p-values must be: the sequential
p-values (`sequential`) extend the distractors and the face bank until they can reach it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from idia.attack.decide.fdr import FDR_METHOD, benjamini_hochberg

DEFAULT_ALPHA = 0.01  # the per-person level when none is given and one person is audited
DEFAULT_FDR = 0.05
FDR_GROUP = 20  # the p-values must be fine enough for BH to flag a group of this many (k q / m at k = 20)
FACE_GROUP = 100  # the face bank: photos per face trade against faces, so it aims at a group of 100


@dataclass(frozen=True)
class Level:
    kind: str  # "per-person" or "fdr"
    alpha: float | None
    q: float | None
    n_audited: int

    @property
    def per_person_alpha(self) -> float:
        """The per-person level the controls (stability, name prior) report at: alpha, or the default."""
        return self.alpha if self.alpha is not None else DEFAULT_ALPHA

    def target(self, group: int) -> float:
        """The p-value the decision must be able to reach: alpha / 10, or BH's k q / m at k = `group`."""
        if self.kind == "fdr":
            return group * self.q / max(self.n_audited, 1)
        return self.per_person_alpha / 10

    def draws_needed(self, group: int = FDR_GROUP) -> int:
        """Null draws (distractors) that let a p-value reach `target`: 1 / target - 1."""
        return max(1, math.ceil(1 / self.target(group)) - 1)

    def decide(self, p: np.ndarray, audited: np.ndarray) -> tuple[np.ndarray, float]:
        """(flagged, threshold): per person p <= alpha; or BH over the audited people (reference people, known
        non-members, are flagged at the threshold BH set but never counted in m)."""
        p = np.asarray(p, dtype=np.float64)
        if self.kind == "per-person":
            return p <= self.per_person_alpha, self.per_person_alpha
        _, threshold = benjamini_hochberg(p[audited], self.q)
        return (p <= threshold) & (threshold > 0), threshold

    def describe(self) -> dict:
        if self.kind == "fdr":
            return {"kind": "fdr", "q": self.q, "alpha": None, "method": FDR_METHOD,
                    "explanation": (f"the false-discovery rate over the {self.n_audited} audited people is kept at "
                                    f"or below {self.q}: of the people flagged, at most a share {self.q} is expected "
                                    "to be people the model does not know")}
        return {"kind": "per-person", "q": None, "alpha": self.per_person_alpha,
                "method": "each person on their own: flagged when p <= alpha",
                "explanation": (f"each person is flagged when their p-value is at most {self.per_person_alpha}: a "
                                "person the model does not know is flagged with probability at most that")}


def choose_level(alpha: float | None, fdr: float, n_audited: int) -> Level:
    """An explicit alpha, or a single person: per person; otherwise the false-discovery rate at `fdr`."""
    if alpha is not None or n_audited <= 1:
        return Level("per-person", alpha, None, n_audited)
    return Level("fdr", None, fdr, n_audited)
