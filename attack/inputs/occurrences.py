"""How often each audited person occurs in the training data: `idia attack --occurrences names.csv`.

The file is the one `idia scan` writes (a header with `name` and `count`; other columns are ignored), or any CSV
like it. People are matched by name the way the scan merges mentions (case, accents, hyphens and middle initials
set aside: "Zoë Saldaña" is "ZOE SALDANA"), so the folders `scan --photos-out` writes match their rows. An
audited person the file does not list gets no count (not 0: the file may list only people named often enough).
"""

from __future__ import annotations

import csv
from pathlib import Path

from idia.attack.inputs.captions.lexicon import fold
from idia.errors import InputError
from idia.io import read_text_file


def occurrence_key(name: str) -> str:
    """The key a name is matched by: folded words, hyphens as spaces, single-letter initials left out."""
    words = [w.rstrip(".") for w in name.replace("-", " ").split()]
    return " ".join(fold(w) for w in words if len(w) > 1)


def read_occurrences(path: str | Path) -> dict[str, int]:
    """{occurrence_key(name): count} from a names.csv; a bad file, row or count is one line naming the file and
    the line."""
    path = Path(path)
    text = read_text_file(path, "names.csv (name,count)", limit=1 << 31).lstrip("\ufeff")
    rows = csv.reader(text.splitlines())
    header = [h.strip().lower() for h in next(rows, [])]
    if "name" not in header or "count" not in header:
        raise InputError(f"{path}: needs a header with name and count columns (as `idia scan` writes), got "
                         f"{','.join(header) or 'nothing'}")
    n, c = header.index("name"), header.index("count")
    out: dict[str, int] = {}
    for line, row in enumerate(rows, start=2):
        if not row or not "".join(row).strip():
            continue
        if len(row) <= max(n, c):
            raise InputError(f"{path}:{line}: expected at least {max(n, c) + 1} columns, got {len(row)}")
        try:
            count = int(row[c])
        except ValueError:
            raise InputError(f"{path}:{line}: count must be a whole number, got {row[c]!r}") from None
        if count < 0:
            raise InputError(f"{path}:{line}: count must not be negative, got {count}")
        key = occurrence_key(row[n])
        if key:
            out[key] = out.get(key, 0) + count
    return out
