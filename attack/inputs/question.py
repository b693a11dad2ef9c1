"""Which names each person is asked to be picked among: the candidate question.

* shared (the paper's protocol): one list of everyone's true names plus made-up distractors; every photo is
  compared with every name. Right while the list holds at most n names, i.e. while at most n people are audited.
* per-person: each person among their own name and the same n-1 distractors. Text is encoded once per name and
  the work per photo stays n_prompts x n however many people are audited, so an audit of 10^5 people asks each
  of them the same question the paper asks: "which of these 1,000 names is this?".

In both, the prediction for a photo is an index into that person's own candidates; `name_of` turns it into a name.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from idia.attack.inputs import names as name_lists
from idia.attack.inputs.distractors import (
    DEFAULT_DRAW,
    CandidateList,
    build_candidates,
    describe_distractors,
    distractors_from_file,
    draw_distractors,
    further_distractors,
)
from idia.errors import InputError
from idia.names import normalize_name

SHARED, PER_PERSON = "shared", "per-person"
DEFAULT_GROUP = "default"


@dataclass
class DistractorGroup:
    """One list of distractors and how it was drawn. The per-person question draws one list per distinct given
    (gender, origin), so its text is encoded once per group, not once per person; everyone else shares the
    default list. `names` are the drawn distractors only (in the shared list, not the audited names)."""

    id: str
    names: list[str]
    how: str
    seed: int
    source: str = "bundled name lists"
    gender: str | None = None
    origin: str | None = None
    balance_sex: bool = False

    def describe(self, n_people: int) -> dict:
        return {"id": self.id, "people": n_people,
                **describe_distractors(self.names, self.how, self.seed, self.source, self.gender,
                                                  self.origin, self.balance_sex)}


@dataclass
class Question:
    mode: str
    shared_names: list[str]  # shared: the whole list; per-person: the first group's n-1 distractors
    person_names: list[str]  # everyone asked (audited, then reference), in evidence order
    true_index: np.ndarray  # [n_people] each person's true name among their own candidates
    source: str
    added_true_names: list[str] = field(default_factory=list)
    not_distractors: set[str] = field(default_factory=set)  # casefolded names in the list that were not drawn
    aliases: dict[str, list[str]] = field(default_factory=dict)  # person -> other names (shared list only)
    groups: list[DistractorGroup] = field(default_factory=list)  # how the distractors were drawn, per group
    group_of: np.ndarray | None = None  # [n_people] index into groups (None: everyone in the first)
    listed: list[str] = field(default_factory=list)  # every name the audit was given: never a distractor
    pool: str | None = None  # the user's distractor pool, when the distractors came from one
    draw: str = DEFAULT_DRAW

    @property
    def n_candidates(self) -> int:
        return len(self.shared_names) + (1 if self.mode == PER_PERSON else 0)

    @property
    def sha256(self) -> str:
        if len(self.groups) > 1:  # every group's list, each under its id
            text = "\n\n".join(f"# {g.id}\n" + "\n".join(g.names) for g in self.groups)
            return hashlib.sha256(text.encode("utf-8")).hexdigest()
        return CandidateList(self.shared_names, self.source).sha256

    def group(self, person: int) -> DistractorGroup:
        return self.groups[0 if self.group_of is None else int(self.group_of[person])]

    def name_of(self, person: int, index: int) -> str:
        if self.mode == PER_PERSON:
            names = self.group(person).names
            return self.person_names[person] if index == len(names) else names[index]
        return self.shared_names[index]

    def further(self, g: int, n: int) -> list[str]:
        """Up to n more distractors for group g, drawn as its own were (bundled lists: the same draw, gender and
        origin; a user's pool: the names of it not yet used), none listed and none already asked, in a seeded
        order (the sequential p-value takes a prefix). A user's fixed candidate list has none."""
        group = self.groups[g]
        exclude = set(self.listed) | set(group.names) | set(self.shared_names) | set(self.person_names)
        seed = (group.seed + 7919) % 2**32
        if group.how == "candidates file":
            return []
        if group.how == "file":
            pool = distractors_from_file(self.pool, None, exclude, seed) if self.pool else []
            return [pool[i] for i in np.random.default_rng(seed).permutation(len(pool))][:n]
        return further_distractors(n, exclude, seed, self.draw, group.gender, group.origin)

    def text_lists(self) -> list[list[str]]:
        """The name lists whose prompts are encoded for everyone: the shared list, or each group's distractors."""
        return [g.names for g in self.groups] if self.mode == PER_PERSON else [self.shared_names]

    @property
    def distractor_mask(self) -> np.ndarray:
        """[n_candidates] True for the candidates drawn as distractors: the permutation test's reference set.
        Audited people's names (and aliases) are candidates but never distractors: the model may know them.
        Per person, candidate j < n-1 is a drawn distractor in every group (each draw leaves out every listed
        name) and the last is the person's own name."""
        if self.mode == PER_PERSON:
            return np.arange(self.n_candidates) < len(self.shared_names)
        return np.array([n.casefold() not in self.not_distractors for n in self.shared_names], dtype=bool)

    def alias_indices(self) -> list[list[int]] | None:
        """Per person: their true name's candidate index, then their aliases' (None without aliases)."""
        if not self.aliases:
            return None
        index = {n.casefold(): i for i, n in enumerate(self.shared_names)}
        return [[int(self.true_index[i])] + [index[a.casefold()] for a in self.aliases.get(name, [])]
                for i, name in enumerate(self.person_names)]

    def distractors_block(self) -> dict:
        """results.json's `distractors`: the first group's description at the top (the only group without
        --attributes), and under `groups` every group with how many people were asked among it."""
        counts = np.bincount(self.group_of if self.group_of is not None else np.zeros(len(self.person_names), int),
                             minlength=len(self.groups))
        groups = [g.describe(int(c)) for g, c in zip(self.groups, counts)]
        top = {k: v for k, v in groups[0].items() if k not in ("id", "people")}
        return {**top, "groups": groups}

    def describe(self) -> dict:
        what = ("one shared list: the audited people's names among made-up distractors (the paper's protocol)"
                if self.mode == SHARED else
                f"per person: their own name among the same {len(self.shared_names)} distractors"
                if len(self.groups) == 1 else
                f"per person: their own name among {len(self.shared_names)} distractors, one list for each of "
                f"{len(self.groups)} groups of people with the same given gender and origin")
        return {"n": self.n_candidates, "question": self.mode, "explanation": what, "source": self.source,
                "sha256": self.sha256, "added_true_names": self.added_true_names}


def group_seed(seed: int, gender: str | None, origin: str | None) -> int:
    """A matched group's own seed, from the run's seed and the group alone: the same people given the same
    attributes get the same distractors whoever else is audited."""
    digest = hashlib.sha256(f"{seed}|{gender or ''}|{origin or ''}".encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big")


def group_id(gender: str | None, origin: str | None) -> str:
    return ",".join(f"{k}={v}" for k, v in (("gender", gender), ("origin", origin)) if v) or DEFAULT_GROUP


def ask(person_names: list[str], n_candidates: int, mode: str = "auto", seed: int = 0,
        user_file: str | Path | None = None, listed: list[str] | None = None, pool: str | Path | None = None,
        aliases: dict[str, list[str]] | None = None, draw: str = DEFAULT_DRAW,
        attributes: dict[str, tuple[str | None, str | None]] | None = None) -> Question:
    """The question for `person_names` (those with photos to ask about). `listed` are all the names the audit
    was given (with people who have no usable photo): the shared list holds them all, and no distractor is one.
    `pool` is the user's distractor pool (default: the bundled lists, drawn as `draw` says); `aliases` other names
    of a person, added to the shared list (never as distractors); `attributes` {person: (gender, origin)} asks
    those people among distractors matched to them (per person only). `auto` keeps the paper's shared list unless
    more people are listed than it holds or attributes are given (a user's own candidate list is always shared:
    it names the candidates)."""
    listed = list(person_names) if listed is None else list(listed)
    aliases = {normalize_name(k): v for k, v in (aliases or {}).items()}
    attributes = {k: v for k, v in (attributes or {}).items() if any(v)}
    if user_file is not None and pool is not None:
        raise InputError("give either --candidates (the whole list) or --distractors (a pool to draw from), not both")
    alias_names = [a for name in listed for a in aliases.get(name, [])]
    if mode == "auto":
        mode = SHARED if (user_file is not None or aliases or len(set(listed)) <= n_candidates) and not attributes \
            else PER_PERSON
    if attributes and (mode == SHARED or user_file is not None or pool is not None):
        raise InputError("--attributes needs the per-person question with distractors from idia's bundled lists")
    kept = {n.casefold() for n in listed + alias_names}
    if mode == SHARED:
        how = "file" if pool is not None else draw
        if pool is None:
            cand = build_candidates(listed + alias_names, n_candidates, seed, user_file, draw)
            if user_file is not None:
                how = "candidates file"
        else:
            unique = list(dict.fromkeys(listed + alias_names))
            drawn = distractors_from_file(pool, max(0, n_candidates - len(unique)), set(unique), seed)
            names = unique + drawn
            order = np.random.default_rng(seed + 1).permutation(len(names))
            cand = CandidateList([names[i] for i in order], source=str(pool))
        index = cand.index()
        folded = {name.casefold(): i for i, name in enumerate(cand.names)}
        true = np.array([index[p] if p in index else folded[p.casefold()] for p in person_names], dtype=np.int64)
        source = str(cand.source) if how in ("file", "candidates file") else "bundled name lists"
        group = DistractorGroup(DEFAULT_GROUP, [n for n in cand.names if n.casefold() not in kept], how, seed,
                                source, balance_sex=how == "balanced")
        return Question(SHARED, cand.names, list(person_names), true, cand.source, cand.added_true_names,
                        not_distractors=kept, aliases={k: v for k, v in aliases.items() if k in set(person_names)},
                        groups=[group], listed=listed + alias_names, pool=str(pool) if pool else None, draw=draw)
    if mode != PER_PERSON:
        raise InputError(f"--candidate-set must be auto, shared or per-person, got {mode!r}")
    if aliases:
        raise InputError("--aliases needs the shared candidate list (--candidate-set shared)")
    n_distractors = n_candidates - 1
    if user_file is not None:
        distractors = [n for n in name_lists.read_name_file(user_file) if n.casefold() not in kept]
        if len(distractors) < n_distractors:
            raise InputError(f"{user_file}: {len(distractors)} names besides the audited people; a per-person "
                             f"question among {n_candidates} needs {n_distractors} distractors")
        groups = [DistractorGroup(DEFAULT_GROUP, distractors[:n_distractors], "candidates file", seed,
                                  str(user_file))]
        source = str(user_file)
    elif pool is not None:
        groups = [DistractorGroup(DEFAULT_GROUP, distractors_from_file(pool, n_distractors, set(listed),
                                                                                  seed), "file", seed, str(pool))]
        source = str(pool)
    else:
        groups, source = _matched_groups(person_names, attributes, n_distractors, set(listed), seed, draw), "generated"
    position = {g.id: i for i, g in enumerate(groups)}
    group_of = np.array([position[group_id(*attributes.get(p, (None, None)))] for p in person_names],
                        dtype=np.int64)
    true = np.full(len(person_names), n_distractors, dtype=np.int64)
    return Question(PER_PERSON, groups[0].names, list(person_names), true, source, groups=groups,
                    group_of=group_of, listed=listed, pool=str(pool) if pool else None, draw=draw)


def _matched_groups(person_names: list[str], attributes: dict, n: int, exclude: set[str], seed: int,
                    draw: str) -> list[DistractorGroup]:
    """One distractor list per distinct (gender, origin) among the people asked: the default draw first (when
    anyone lacks attributes), then the matched groups by id, each seeded by `group_seed`."""
    wanted = {attributes.get(p, (None, None)): p for p in reversed(person_names)}  # each group's first person
    keys = sorted(wanted, key=lambda k: (k != (None, None), group_id(*k)))
    groups = []
    for gender, origin in keys:
        if gender is None and origin is None:
            groups.append(DistractorGroup(DEFAULT_GROUP, draw_distractors(n, exclude, seed, draw), draw,
                                          seed, balance_sex=draw == "balanced"))
            continue
        g_seed = group_seed(seed, gender, origin)
        try:
            names = draw_distractors(n, exclude, g_seed, draw, gender, origin)
        except InputError as e:
            raise InputError(f"--attributes: no {n} distractors for {group_id(gender, origin)} (e.g. "
                             f"{wanted[(gender, origin)]!r}): {e}; leave the origin or gender empty for them, or "
                             "lower --n-candidates") from None
        groups.append(DistractorGroup(group_id(gender, origin), names, "matched", g_seed, gender=gender,
                                      origin=origin, balance_sex=gender is None and draw == "balanced"))
    return groups
