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
    not_distractors: set[str] = field(default_factory=set)  # casefolded names in the list that were not drawn
    aliases: dict[str, list[str]] = field(default_factory=dict)  # person -> other names (shared list only)
    distractors_how: str = "bundled"
    seed: int = 0

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

    @property
    def distractor_mask(self) -> np.ndarray:
        """[n_candidates] True for the candidates drawn as distractors: the permutation test's reference set.
        Audited people's names (and aliases) are candidates but never distractors: the model may know them."""
        drawn = [n.casefold() not in self.not_distractors for n in self.shared_names]
        return np.array(drawn + ([False] if self.mode == PER_PERSON else []), dtype=bool)

    def alias_indices(self) -> list[list[int]] | None:
        """Per person: their true name's candidate index, then their aliases' (None without aliases)."""
        if not self.aliases:
            return None
        index = {n.casefold(): i for i, n in enumerate(self.shared_names)}
        return [[int(self.true_index[i])] + [index[a.casefold()] for a in self.aliases.get(name, [])]
                for i, name in enumerate(self.person_names)]

    def distractors_block(self) -> dict:
        drawn = [n for n, d in zip(self.shared_names, self.distractor_mask) if d]
        source = self.source if self.distractors_how == "file" else "bundled name lists"
        return name_lists.describe_distractors(drawn, self.distractors_how, self.seed, source=source,
                                               balance_sex=False)

    def describe(self) -> dict:
        what = ("one shared list: the audited people's names among made-up distractors (the paper's protocol)"
                if self.mode == SHARED else
                f"per person: their own name among the same {len(self.shared_names)} distractors")
        return {"n": self.n_candidates, "question": self.mode, "explanation": what, "source": self.source,
                "sha256": self.sha256, "added_true_names": self.added_true_names}


def ask(person_names: list[str], n_candidates: int, mode: str = "auto", seed: int = 0,
        user_file: str | Path | None = None, listed: list[str] | None = None, pool: str | Path | None = None,
        aliases: dict[str, list[str]] | None = None) -> Question:
    """The question for `person_names` (those with photos to ask about). `listed` are all the names the audit
    was given (with people who have no usable photo): the shared list holds them all, and no distractor is one.
    `pool` is the user's distractor pool (default: the bundled lists); `aliases` other names of a person, added
    to the shared list (never as distractors). `auto` keeps the paper's shared list unless more people are
    listed than it holds (a user's own candidate list is always shared: it names the candidates)."""
    listed = list(person_names) if listed is None else list(listed)
    aliases = {name_lists.normalize_name(k): v for k, v in (aliases or {}).items()}
    if user_file is not None and pool is not None:
        raise InputError("give either --candidates (the whole list) or --distractors (a pool to draw from), not both")
    alias_names = [a for name in listed for a in aliases.get(name, [])]
    if mode == "auto":
        mode = SHARED if (user_file is not None or aliases or len(set(listed)) <= n_candidates) else PER_PERSON
    kept = {n.casefold() for n in listed + alias_names}
    how = "file" if pool is not None else "bundled"
    if mode == SHARED:
        if pool is None:
            cand = name_lists.build_candidates(listed + alias_names, n_candidates, seed, user_file)
            if user_file is not None:
                how = "candidates file"
        else:
            unique = list(dict.fromkeys(listed + alias_names))
            drawn = name_lists.distractors_from_file(pool, max(0, n_candidates - len(unique)), set(unique), seed)
            names = unique + drawn
            order = np.random.default_rng(seed + 1).permutation(len(names))
            cand = name_lists.CandidateList([names[i] for i in order], source=str(pool))
        index = cand.index()
        folded = {name.casefold(): i for i, name in enumerate(cand.names)}
        true = np.array([index[p] if p in index else folded[p.casefold()] for p in person_names], dtype=np.int64)
        return Question(SHARED, cand.names, list(person_names), true, cand.source, cand.added_true_names,
                        not_distractors=kept, aliases={k: v for k, v in aliases.items() if k in set(person_names)},
                        distractors_how=how, seed=seed)
    if mode != PER_PERSON:
        raise InputError(f"--candidate-set must be auto, shared or per-person, got {mode!r}")
    if aliases:
        raise InputError("--aliases needs the shared candidate list (--candidate-set shared)")
    if user_file is not None:
        distractors = [n for n in name_lists.read_name_file(user_file) if n.casefold() not in kept]
        if len(distractors) < n_candidates - 1:
            raise InputError(f"{user_file}: {len(distractors)} names besides the audited people; a per-person "
                             f"question among {n_candidates} needs {n_candidates - 1} distractors")
        distractors, source, how = distractors[:n_candidates - 1], str(user_file), "candidates file"
    elif pool is not None:
        distractors, source = name_lists.distractors_from_file(pool, n_candidates - 1, set(listed), seed), str(pool)
    else:
        distractors, source = name_lists.make_distractors(n_candidates - 1, set(listed), seed), "generated"
    true = np.full(len(person_names), len(distractors), dtype=np.int64)
    return Question(PER_PERSON, distractors, list(person_names), true, source, distractors_how=how, seed=seed)
