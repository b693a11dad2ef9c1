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

from idia.errors import InputError
from idia.io import read_text_file

DEFAULT_N_CANDIDATES = 1000
# How distractors are drawn from the bundled lists: balanced, half female and half male first names (as the
# paper's authors draw them); uniform, every bundled first name alike (idia's draw before sex balancing).
DISTRACTOR_DRAWS = ("balanced", "uniform")
DEFAULT_DRAW = "balanced"


@lru_cache(maxsize=None)
def _bundled(filename: str) -> tuple[str, ...]:
    text = resources.files("idia.attack").joinpath("data", filename).read_text(encoding="utf-8")
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
    raw = read_text_file(path, "text file of names (one per line)")
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


# --- distractors matched to the person -----------------------------------------------------------------------

GENDERS = ("f", "m", "u")


@lru_cache(maxsize=None)
def _tags(filename: str) -> dict[str, tuple[str, ...]]:
    """A bundled TSV of tags (first column the name; '#' comments and the header row skipped)."""
    text = resources.files("idia.attack").joinpath("data", filename).read_text(encoding="utf-8")
    rows = [line.split("\t") for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return {r[0]: tuple(r[1:]) for r in rows[1:]}


def first_name_tags() -> dict[str, tuple[str, str]]:
    """name -> (gender f/m/u, coarse region), hand-assigned and approximate (see the data file's header)."""
    return _tags("first_names_tags.tsv")  # type: ignore[return-value]


def last_name_origins() -> dict[str, str]:
    return {name: tags[0] for name, tags in _tags("last_names_tags.tsv").items()}


def origins() -> list[str]:
    return sorted({o for _, o in first_name_tags().values()} | set(last_name_origins().values()))


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


def read_attributes(path: str | Path, people: list[str]) -> dict[str, tuple[str | None, str | None]]:
    """A CSV of people's attributes (header `name,gender,origin`; gender f, m or empty; origin one of `origins()`
    or empty): {person's name as in `people`: (gender, origin)}. Names match as everywhere (`name_key`); an
    unknown name, a bad value or a repeated person is a one-line error naming the file and line."""
    import csv
    path = Path(path)
    raw = read_text_file(path, "attributes CSV (name,gender,origin)").lstrip("\ufeff")
    known = {name_key(p): p for p in people}
    regions = origins()
    out: dict[str, tuple[str | None, str | None]] = {}
    first_line: dict[str, int] = {}
    header = False
    reader = csv.reader(raw.splitlines())
    for row in reader:
        lineno = reader.line_num
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if not header:
            if [c.casefold() for c in cells] != ["name", "gender", "origin"]:
                raise InputError(f"{path}:{lineno}: the first line must be the header name,gender,origin")
            header = True
            continue
        if len(cells) != 3:
            raise InputError(f"{path}:{lineno}: expected 3 fields (name,gender,origin), got {len(cells)}")
        name, gender, origin = normalize_name(cells[0]), cells[1].casefold() or None, cells[2].casefold() or None
        if name_key(name) not in known:
            raise InputError(f"{path}:{lineno}: {name!r} is not among the audited or reference people")
        if name_key(name) in first_line:
            raise InputError(f"{path}:{lineno}: {name!r} is listed twice (first on line {first_line[name_key(name)]})")
        if gender not in (None, "f", "m"):
            raise InputError(f"{path}:{lineno}: gender must be f, m or empty, got {cells[1]!r}")
        if origin is not None and origin not in regions:
            raise InputError(f"{path}:{lineno}: unknown origin {cells[2]!r}; choose one of {', '.join(regions)} "
                             "or leave it empty")
        first_line[name_key(name)] = lineno
        out[known[name_key(name)]] = (gender, origin)
    return out


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


# --- aliases -------------------------------------------------------------------------------------------------

def read_aliases(path: str | Path) -> dict[str, list[str]]:
    """name -> other names the person is known by. YAML (`.yaml`/`.yml`: a mapping of name to a list of names)
    or TSV (one person a line: name, then each alias, tab-separated; '#' comments). One-line errors."""
    path = Path(path)
    raw = read_text_file(path, "aliases file")
    entries: list[tuple[int, str, list[str]]] = []
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml
        try:
            data = yaml.safe_load(raw)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f":{mark.line + 1}" if mark is not None else ""
            raise InputError(f"{path}{where}: not valid YAML ({getattr(e, 'problem', None) or e})") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise InputError(f"{path}: aliases must be a mapping of each name to a list of other names")
        for key, value in data.items():
            if isinstance(value, str):
                value = [value]
            if not isinstance(key, str) or not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InputError(f"{path}: entry {key!r} must map a name to a list of names")
            entries.append((0, key, value))
    else:
        for lineno, line in enumerate(raw.splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            cells = [c for c in line.split("\t")]
            if len(cells) < 2 or not all(normalize_name(c) for c in cells):
                raise InputError(f"{path}:{lineno}: expected a name and at least one alias, separated by tabs")
            entries.append((lineno, cells[0], cells[1:]))
    out: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    for lineno, key, values in entries:
        where = f"{path}:{lineno}" if lineno else str(path)
        name = normalize_name(key)
        if not name:
            raise InputError(f"{where}: an empty name")
        if name in out:
            raise InputError(f"{where}: {name!r} is listed twice")
        aliases = [normalize_name(v) for v in values]
        if any(not a for a in aliases):
            raise InputError(f"{where}: an empty alias for {name!r}")
        for a in [name, *aliases]:
            if a.casefold() in owner and owner[a.casefold()] != name:
                raise InputError(f"{where}: {a!r} is also a name of {owner[a.casefold()]!r}")
            owner[a.casefold()] = name
        out[name] = [a for a in dict.fromkeys(aliases) if a != name]
    return out
