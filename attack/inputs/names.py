"""Names: the bundled first-name and surname lists, and the candidate list an attack ranks.

The paper's candidate list holds the true names among made-up first + last distractors; the same lists make up
the synthetic world's people, so distractors look like the real names.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from idia.errors import InputError
from idia.io import read_text_file
from idia.names import name_key, normalize_name


@lru_cache(maxsize=None)
def _bundled(filename: str) -> tuple[str, ...]:
    text = resources.files("idia.attack").joinpath("data", filename).read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def first_names() -> tuple[str, ...]:
    return _bundled("first_names.txt")


def last_names() -> tuple[str, ...]:
    return _bundled("last_names.txt")


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


# --- distractors matched to the person -----------------------------------------------------------------------


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
