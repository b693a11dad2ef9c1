"""Which names each person is asked to be picked among: the candidate question.

* shared (the paper's protocol): one list of everyone's true names plus made-up distractors; every photo is
  compared with every name. Right while the list holds at most n names, i.e. while at most n people are audited.
* per-person: each person among their own name and the same n-1 distractors. Text is encoded once per name and
  the work per photo stays n_prompts x n however many people are audited, so an audit of 10^5 people asks each
  of them the same question the paper asks: "which of these 1,000 names is this?".

In both, the prediction for a photo is an index into that person's own candidates; `name_of` turns it into a name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import names as name_lists
from .errors import InputError

SHARED, PER_PERSON = "shared", "per-person"


@dataclass
class Question:
    mode: str
    shared_names: list[str]  # shared: the whole list; per-person: the n-1 distractors
    person_names: list[str]  # everyone asked (audited, then reference), in evidence order
    true_index: np.ndarray  # [n_people] each person's true name among their own candidates
    source: str
    added_true_names: list[str] = field(default_factory=list)

    @property
    def n_candidates(self) -> int:
        return len(self.shared_names) + (1 if self.mode == PER_PERSON else 0)

    @property
    def sha256(self) -> str:
        return name_lists.CandidateList(self.shared_names, self.source).sha256

    def name_of(self, person: int, index: int) -> str:
        if self.mode == PER_PERSON and index == len(self.shared_names):
            return self.person_names[person]
        return self.shared_names[index]

    def describe(self) -> dict:
        what = ("one shared list: the audited people's names among made-up distractors (the paper's protocol)"
                if self.mode == SHARED else
                f"per person: their own name among the same {len(self.shared_names)} distractors")
        return {"n": self.n_candidates, "question": self.mode, "explanation": what, "source": self.source,
                "sha256": self.sha256, "added_true_names": self.added_true_names}


def ask(person_names: list[str], n_candidates: int, mode: str = "auto", seed: int = 0,
        user_file: str | Path | None = None, listed: list[str] | None = None) -> Question:
    """The question for `person_names` (those with photos to ask about). `listed` are all the names the audit
    was given (with people who have no usable photo): the shared list holds them all, and no distractor is one.
    `auto` keeps the paper's shared list unless more people are listed than it holds (a user's own list is
    always shared: it names the candidates)."""
    listed = list(person_names) if listed is None else list(listed)
    if mode == "auto":
        mode = SHARED if user_file is not None or len(set(listed)) <= n_candidates else PER_PERSON
    if mode == SHARED:
        cand = name_lists.build_candidates(listed, n_candidates, seed, user_file)
        index = cand.index()
        folded = {name.casefold(): i for i, name in enumerate(cand.names)}
        true = np.array([index[p] if p in index else folded[p.casefold()] for p in person_names], dtype=np.int64)
        return Question(SHARED, cand.names, list(person_names), true, cand.source, cand.added_true_names)
    if mode != PER_PERSON:
        raise InputError(f"--candidate-set must be auto, shared or per-person, got {mode!r}")
    taken = {n.casefold() for n in listed}
    if user_file is not None:
        pool = [n for n in name_lists.read_name_file(user_file) if n.casefold() not in taken]
        if len(pool) < n_candidates - 1:
            raise InputError(f"{user_file}: {len(pool)} names besides the audited people; a per-person question "
                             f"among {n_candidates} needs {n_candidates - 1} distractors")
        distractors, source = pool[:n_candidates - 1], str(user_file)
    else:
        distractors, source = name_lists.make_distractors(n_candidates - 1, set(listed), seed), "generated"
    true = np.full(len(person_names), len(distractors), dtype=np.int64)
    return Question(PER_PERSON, distractors, list(person_names), true, source)
