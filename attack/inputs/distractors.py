"""Distractors: the made-up names a person's own name is ranked among, and how they were drawn.

From idia's bundled first-name and surname lists (balanced by sex by default, as the paper's authors draw them;
matched to a person's gender and origin when given) or from a user's pool; `CandidateList` is the paper's shared
list of everyone's names among the distractors."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from idia.attack.inputs.names import (
    first_name_tags,
    first_names,
    last_name_origins,
    last_names,
    origins,
    read_name_file,
)
from idia.errors import InputError
from idia.names import name_key, normalize_name

DEFAULT_N_CANDIDATES = 1000


# How distractors are drawn from the bundled lists: balanced, half female and half male first names (as the
# paper's authors draw them); uniform, every bundled first name alike (idia's draw before sex balancing).
DISTRACTOR_DRAWS = ("balanced", "uniform")


DEFAULT_DRAW = "balanced"


def make_distractors(n: int, exclude: set[str], seed: int) -> list[str]:
    """n made-up first + last names, none in `exclude`, drawn without repetition from the bundled lists."""
    rng = np.random.default_rng(seed)
    firsts, lasts = first_names(), last_names()
    if n > len(firsts) * len(lasts) - len(exclude):
        raise InputError(f"cannot make {n} distinct distractor names from the bundled lists")
    taken = {name_key(e) for e in exclude}
    out: list[str] = []
    while len(out) < n:
        name = f"{firsts[rng.integers(len(firsts))]} {lasts[rng.integers(len(lasts))]}"
        if name_key(name) not in taken:
            taken.add(name_key(name))
            out.append(name)
    return out


@dataclass
class CandidateList:
    """The names the model chooses among, and how the list came about."""

    names: list[str]
    source: str  # "generated" or the user's file
    added_true_names: list[str] = field(default_factory=list)  # true names the user's list lacked

    @property
    def sha256(self) -> str:
        return hashlib.sha256("\n".join(self.names).encode("utf-8")).hexdigest()

    def index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    def position(self, name: str) -> int:
        """Where `name` stands in the list, matched as the duplicate check matches (NFC, case, spacing), so a
        folder "Agnes Albrecht" finds the candidate file's "agnes albrecht"."""
        keys = self.__dict__.get("_keys")
        if keys is None or len(keys) != len(self.names):
            keys = {}
            for i, n in enumerate(self.names):
                keys.setdefault(name_key(n), i)
            self.__dict__["_keys"] = keys
        try:
            return keys[name_key(name)]
        except KeyError:
            raise InputError(f"{name!r} is not among the {len(self.names)} candidate names") from None


def build_candidates(true_names: list[str], n_total: int = DEFAULT_N_CANDIDATES, seed: int = 0,
                     user_file: str | Path | None = None, draw: str = DEFAULT_DRAW) -> CandidateList:
    """The paper's list: everyone under audit plus seeded made-up distractors (`draw_distractors`), shuffled; or
    the user's list with any missing true name added (and recorded)."""
    true_names = [normalize_name(n) for n in true_names]
    if user_file is not None:
        names = read_name_file(user_file)
        if not names:
            raise InputError(f"{user_file}: the candidate list holds no names")
        present = {name_key(n) for n in names}
        added = list(dict.fromkeys(n for n in true_names if name_key(n) not in present))
        return CandidateList(names=names + added, source=str(user_file), added_true_names=added)
    unique_true = list(dict.fromkeys(true_names))
    n_distractors = max(0, n_total - len(unique_true))
    names = unique_true + draw_distractors(n_distractors, set(unique_true), seed, draw)
    order = np.random.default_rng(seed + 1).permutation(len(names))
    return CandidateList(names=[names[i] for i in order], source="generated")


GENDERS = ("f", "m", "u")


def make_matched_distractors(n: int, exclude: set[str], seed: int, gender: str | None = None,
                             origin: str | None = None, balance_sex: bool = True) -> list[str]:
    """n made-up first + last names drawn like the audited person's: first names of their `gender` (f or m;
    unisex names count for both), first names and surnames of their `origin` region; without a gender, exactly
    n // 2 female and n - n // 2 male first names when `balance_sex` (the paper's authors balance by sex; unisex
    names are left out so the halves are exact). Seeded, and refuses a combination the bundled lists cannot
    fill."""
    tags, last_origin = first_name_tags(), last_name_origins()
    if gender is not None and gender not in ("f", "m"):
        raise InputError(f"distractor gender must be 'f' or 'm', got {gender!r}")
    known = origins()
    if origin is not None and origin not in known:
        raise InputError(f"unknown distractor origin {origin!r}; choose one of {', '.join(known)}")

    def firsts_of(sexes: tuple[str, ...] | None) -> list[str]:
        return [f for f in first_names() if (sexes is None or tags[f][0] in sexes)
                and (origin is None or tags[f][1] == origin)]

    lasts = [s for s in last_names() if origin is None or last_origin[s] == origin]
    if gender is not None:
        groups = [(firsts_of((gender, "u")), n, gender)]
    elif balance_sex:
        groups = [(firsts_of(("f",)), n // 2, "f"), (firsts_of(("m",)), n - n // 2, "m")]
    else:
        groups = [(firsts_of(None), n, "f/m")]
    taken = {normalize_name(e).casefold() for e in exclude}
    rng = np.random.default_rng(seed)
    out: list[str] = []
    for firsts, want, sex in groups:
        if want and (not firsts or not lasts):
            raise InputError(f"the bundled lists hold no {sex} first names of origin {origin!r}")
        pool = len(firsts) * len(lasts)
        if 2 * want > pool:  # a tight pool: list what is left and draw from it (no endless rejection)
            left = [f"{f} {s}" for f in firsts for s in lasts if f"{f} {s}".casefold() not in taken]
            if want > len(left):
                raise InputError(f"cannot draw {want} distinct distractor names with {sex} first names of origin "
                                 f"{origin!r} from the bundled lists ({len(left)} left)")
            picked = [left[i] for i in rng.choice(len(left), size=want, replace=False)]
            taken.update(p.casefold() for p in picked)
            out += picked
            continue
        got = 0
        while got < want:
            name = f"{firsts[rng.integers(len(firsts))]} {lasts[rng.integers(len(lasts))]}"
            if name.casefold() not in taken:
                taken.add(name.casefold())
                out.append(name)
                got += 1
    order = rng.permutation(len(out))
    return [out[i] for i in order]


def draw_distractors(n: int, exclude: set[str], seed: int, draw: str = DEFAULT_DRAW, gender: str | None = None,
                     origin: str | None = None) -> list[str]:
    """Distractors from the bundled lists as `draw` says (DISTRACTOR_DRAWS), matched to a person's gender and
    origin when either is given. `uniform` without a match is `make_distractors`, draw for draw."""
    if draw not in DISTRACTOR_DRAWS:
        raise InputError(f"the distractor draw must be one of {', '.join(DISTRACTOR_DRAWS)}, got {draw!r}")
    if draw == "uniform" and gender is None and origin is None:
        return make_distractors(n, exclude, seed)
    return make_matched_distractors(n, exclude, seed, gender, origin, balance_sex=draw == "balanced")


def distractors_from_file(path: str | Path, n: int | None, exclude: set[str], seed: int) -> list[str]:
    """The user's distractor pool (one name a line, `read_name_file`), minus the audited names; n of them drawn
    without replacement (seeded), or all of them when n is None."""
    pool = read_name_file(path)
    taken = {normalize_name(e).casefold() for e in exclude}
    pool = [p for p in pool if p.casefold() not in taken]
    if not pool:
        raise InputError(f"{path}: the distractor pool holds no name besides the audited people's")
    if n is None:
        return pool
    if n > len(pool):
        raise InputError(f"{path}: {n} distractors needed but the pool holds {len(pool)} usable names")
    idx = np.random.default_rng(seed).choice(len(pool), size=n, replace=False)
    return [pool[i] for i in sorted(idx)]


def describe_distractors(names: list[str], how: str, seed: int, source: str = "bundled name lists",
                         gender: str | None = None, origin: str | None = None, balance_sex: bool = True) -> dict:
    """The `distractors` block of results.json: how they were drawn, in plain words too, and what they turned out
    to be (counted with the bundled tags; names from a user's pool that the tags do not know count as unknown)."""
    tags, last_origin = first_name_tags(), last_name_origins()
    by_gender: dict[str, int] = {}
    by_origin: dict[str, int] = {}
    for name in names:
        parts = name.split(" ")
        g, o = tags.get(parts[0], ("unknown", "unknown"))
        if len(parts) > 1 and parts[-1] in last_origin and o == "unknown":
            o = last_origin[parts[-1]]
        by_gender[g] = by_gender.get(g, 0) + 1
        by_origin[o] = by_origin.get(o, 0) + 1
    return {"how": how, "description": _drawn_in_words(how, gender, origin, balance_sex), "source": source,
            "n": len(names), "seed": seed, "gender": gender, "origin": origin, "balance_sex": balance_sex,
            "counts": {"gender": dict(sorted(by_gender.items())), "origin": dict(sorted(by_origin.items()))},
            "excluded": "the audited people's own names are candidates but never counted as distractors"}


def _drawn_in_words(how: str, gender: str | None, origin: str | None, balance_sex: bool) -> str:
    if how == "file":
        return "names drawn at random from the user's pool"
    if how == "candidates file":
        return "the names of the user's candidate list"
    lead = "made-up first + last names drawn at random from idia's bundled lists"
    if how == "matched":
        lead += ", matched to the person"
    sex = ({"f": "female", "m": "male"}[gender] + " first names (unisex ones included)" if gender else
           "half female and half male first names" if balance_sex else "first names of either sex alike")
    where = f", first names and surnames of origin {origin.replace('_', ' ')}" if origin else ""
    return f"{lead}: {sex}{where}"


def further_distractors(n: int, exclude: set[str], seed: int, draw: str = DEFAULT_DRAW, gender: str | None = None,
                        origin: str | None = None) -> list[str]:
    """Up to n more made-up names drawn as `draw_distractors` draws them (same lists, same gender, origin and sex
    balance), none in `exclude`, in a seeded order whose every prefix is drawn alike: the sequential p-value
    (`attack.decide.sequential`) takes them in this order and stops where it can. Every combination of the
    bundled lists is enumerated once; with balance, female and male first names alternate."""
    tags, last_origin = first_name_tags(), last_name_origins()
    lasts = [s for s in last_names() if origin is None or last_origin[s] == origin]

    def combos(sexes) -> list[str]:
        firsts = [f for f in first_names() if (sexes is None or tags[f][0] in sexes)
                  and (origin is None or tags[f][1] == origin)]
        return [f"{f} {s}" for f in firsts for s in lasts]

    if gender is not None:
        pools = [combos((gender, "u"))]
    elif draw == "balanced":
        pools = [combos(("f",)), combos(("m",))]
    else:
        pools = [combos(None)]
    taken = {name_key(e) for e in exclude}
    rng = np.random.default_rng(seed)
    shuffled = []
    for pool in pools:
        pool = [p for p in pool if name_key(p) not in taken]
        shuffled.append([pool[i] for i in rng.permutation(len(pool))])
    out: list[str] = []
    for k in range(max((len(s) for s in shuffled), default=0)):  # alternate, so every prefix is balanced
        if len(out) >= n or any(k >= len(s) for s in shuffled):
            break
        out += [s[k] for s in shuffled]
    return out[:n]
