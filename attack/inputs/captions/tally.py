"""Counting who is named: per piece in memory (`Tally`), then merged across pieces in bounded memory (`Counts`).

A person's entry is `[count, strong, alone, forms, examples]`: captions naming them, those that name them
strongly (see `extract`), those that name nobody else, up to MAX_FORMS spellings with their counts, and the
MAX_EXAMPLES shortest captions naming them strongly. Counts are exact and do not depend on the order in which
pieces finish; the examples do not either.

Memory is bounded whatever the input: `Counts` holds at most `max_in_memory` people; beyond that it spills its
entries to `partitions` files on disk by a hash of the key, and at the end merges one partition at a time. Peak
memory is then about max_in_memory + (distinct people / partitions) entries, however many captions are read (10^8
captions of web data name a few million distinct strings; 256 partitions keep each merge to some ten thousand).
The rows come out by count, then name, merged from sorted runs, so writing them streams too.
"""

from __future__ import annotations

import heapq
import json
import os
import shutil
import tempfile
import zlib
from pathlib import Path
from typing import Iterable, Iterator

from idia.attack.inputs.captions.extract import Mention

MAX_FORMS = 4
MAX_EXAMPLES = 2
EXAMPLE_CHARS = 200
DEFAULT_MAX_IN_MEMORY = 500_000
DEFAULT_PARTITIONS = 256
COUNT, STRONG, ALONE, FORMS, EXAMPLES = range(5)


def _merge_entry(into: list, other: list) -> None:
    into[COUNT] += other[COUNT]
    into[STRONG] += other[STRONG]
    into[ALONE] += other[ALONE]
    forms = into[FORMS]
    for form, n in other[FORMS].items():
        forms[form] = forms.get(form, 0) + n
    if len(forms) > MAX_FORMS:
        into[FORMS] = dict(sorted(forms.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_FORMS])
    if other[EXAMPLES]:
        into[EXAMPLES] = sorted(set(into[EXAMPLES] + other[EXAMPLES]), key=_shortest)[:MAX_EXAMPLES]


def _shortest(text: str) -> tuple:
    return (len(text), text)


def _add_example(examples: list[str], caption: str) -> None:
    """Keep the MAX_EXAMPLES shortest distinct captions: the same ones whatever order the pieces come in."""
    if caption in examples:
        return
    if len(examples) < MAX_EXAMPLES:
        examples.append(caption)
        examples.sort(key=_shortest)
    elif _shortest(caption) < _shortest(examples[-1]):
        examples[-1] = caption
        examples.sort(key=_shortest)


class Tally:
    """The people one piece of captions names, and how many captions it held."""

    def __init__(self):
        self.people: dict[str, list] = {}
        self.captions = 0
        self.captions_naming = 0

    def add(self, caption: str, mentions: list[Mention]) -> None:
        self.captions += 1
        if not mentions:
            return
        self.captions_naming += 1
        alone = len(mentions) == 1
        people = self.people
        for m in mentions:
            e = people.get(m.key)
            if e is None:
                e = people[m.key] = [0, 0, 0, {}, []]
            e[COUNT] += 1
            e[STRONG] += m.strong
            e[ALONE] += alone
            forms = e[FORMS]
            if m.form in forms or len(forms) < MAX_FORMS:
                forms[m.form] = forms.get(m.form, 0) + 1
            if m.strong:
                _add_example(e[EXAMPLES], caption[:EXAMPLE_CHARS])


class Counts:
    """Every piece's tally merged, exactly, in bounded memory (see the module docstring)."""

    def __init__(self, max_in_memory: int = DEFAULT_MAX_IN_MEMORY, partitions: int = DEFAULT_PARTITIONS,
                 workdir: str | Path | None = None):
        self.max_in_memory = max(1, max_in_memory)
        self.partitions = max(1, partitions)
        self.people: dict[str, list] = {}
        self.captions = 0
        self.captions_naming = 0
        self.spills = 0
        self.peak_in_memory = 0  # the most entries held at once, merging included (the bound, measured)
        self._workdir = workdir
        self._tmp: Path | None = None

    def add(self, tally: Tally) -> None:
        self.captions += tally.captions
        self.captions_naming += tally.captions_naming
        people = self.people
        for key, entry in tally.people.items():
            mine = people.get(key)
            if mine is None:
                people[key] = [entry[COUNT], entry[STRONG], entry[ALONE], dict(entry[FORMS]), list(entry[EXAMPLES])]
            else:
                _merge_entry(mine, entry)
            if len(people) >= self.max_in_memory:
                self.peak_in_memory = max(self.peak_in_memory, len(people))
                self._spill()
                people = self.people
        self.peak_in_memory = max(self.peak_in_memory, len(people))

    def _partition(self, key: str) -> int:
        return zlib.crc32(key.encode("utf-8")) % self.partitions

    def _spill(self) -> None:
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="idia-scan-", dir=self._workdir))
        buckets: dict[int, list] = {}
        for key, entry in self.people.items():
            buckets.setdefault(self._partition(key), []).append((key, entry))
        for p, items in buckets.items():
            with open(self._tmp / f"{p:04d}.part", "a", encoding="utf-8") as f:
                _write_chunk(f, items)
        self.people = {}
        self.spills += 1

    def rows(self, keep) -> Iterator[tuple[str, list]]:
        """(key, entry) of every person `keep(entry)` accepts, by count (highest first), then key. Streams from
        disk when the counts were spilled; the temporary files are removed when the rows are done."""
        if self._tmp is None:
            chosen = [(k, e) for k, e in self.people.items() if keep(e)]
            chosen.sort(key=_order)
            yield from chosen
            return
        try:
            if self.people:
                self._spill()
            runs = [self._sorted_run(part, keep) for part in sorted(self._tmp.glob("*.part"))]
            yield from heapq.merge(*(_read_run(r) for r in runs), key=_order)
        finally:
            self.close()

    def _sorted_run(self, part: Path, keep) -> Path:
        merged: dict[str, list] = {}
        for key, entry in _read_run(part):
            mine = merged.get(key)
            if mine is None:
                merged[key] = entry
            else:
                _merge_entry(mine, entry)
        self.peak_in_memory = max(self.peak_in_memory, len(merged))
        chosen = sorted(((k, e) for k, e in merged.items() if keep(e)), key=_order)
        run = part.with_suffix(".run")
        with open(run, "w", encoding="utf-8") as f:
            for start in range(0, len(chosen), 10_000):
                _write_chunk(f, chosen[start:start + 10_000])
        part.unlink()
        return run

    def close(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def _order(item: tuple[str, list]) -> tuple:
    return (-item[1][COUNT], item[0])


def _write_chunk(f, items) -> None:
    """(key, entry) items as one JSON line: plain data, so reading a spill file back runs nothing."""
    f.write(json.dumps(items, ensure_ascii=False, separators=(",", ":")) + "\n")


def _read_run(path: Path) -> Iterable[tuple[str, list]]:
    """The (key, entry) items of a spill file or a sorted run, in the order written."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield from json.loads(line)


def display_name(forms: dict[str, int]) -> str:
    """The name as people write it: the most frequent spelling that is not all capitals (a tie goes to the
    alphabetically first), else the capitals written as a name."""
    from idia.attack.inputs.captions.extract import title_case
    written = [(n, f) for f, n in forms.items() if not f.isupper()]
    if written:
        return min(written, key=lambda nf: (-nf[0], nf[1]))[1]
    return title_case(max(forms.items(), key=lambda fn: (fn[1], fn[0]))[0])


def temp_dir_bytes(path: Path | None) -> int:
    if path is None or not path.exists():
        return 0
    return sum(os.path.getsize(p) for p in path.iterdir())
