"""Names: the bundled first-name and surname lists, and the candidate list an attack ranks.

The paper's candidate list holds the true names among made-up first + last distractors; the same lists make up
the synthetic world's people, so distractors look like the real names.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from .errors import InputError

DEFAULT_N_CANDIDATES = 1000


@lru_cache(maxsize=None)
def _bundled(filename: str) -> tuple[str, ...]:
    text = resources.files("attack").joinpath("data", filename).read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def first_names() -> tuple[str, ...]:
    return _bundled("first_names.txt")


def last_names() -> tuple[str, ...]:
    return _bundled("last_names.txt")


def normalize_name(name: str) -> str:
    """One spelling per name: Unicode NFC (so a precomposed and a decomposed "Zoë" are one name), single spaces,
    no surrounding blanks. Case is kept: it is part of the name."""
    return " ".join(unicodedata.normalize("NFC", name).split())


def name_key(name: str) -> str:
    """What two names must share to be the same person: the normalised name, case-folded (and NFC again, since
    case folding can decompose). Every duplicate check and every lookup by name goes through this."""
    return unicodedata.normalize("NFC", normalize_name(name).casefold())


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


def read_name_file(path: str | Path) -> list[str]:
    """Names from a text file, one per line; blank lines and '#' comments are skipped, duplicates refused."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file of names") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a text file with one name per line") from None
    names: list[str] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(raw.splitlines(), start=1):
        name = normalize_name(line)
        if not name or name.startswith("#"):
            continue
        if name_key(name) in seen:
            raise InputError(f"{path}:{lineno}: duplicate name {name!r} (first on line {seen[name_key(name)]})")
        seen[name_key(name)] = lineno
        names.append(name)
    return names


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
                     user_file: str | Path | None = None) -> CandidateList:
    """The paper's list: everyone under audit plus seeded made-up distractors, shuffled; or the user's list
    with any missing true name added (and recorded)."""
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
    names = unique_true + make_distractors(n_distractors, set(unique_true), seed)
    order = np.random.default_rng(seed + 1).permutation(len(names))
    return CandidateList(names=[names[i] for i in order], source="generated")
