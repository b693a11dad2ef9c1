"""The raw answers, one row per image and prompt, streamed to scores.csv (scores.csv.gz when large) with the
SHA-256 of the bytes written: every figure in results.json can be recomputed from them.

`predicted` is empty where two or more names tied for the top similarity (that photo named nobody for that
prompt). Text cells that a spreadsheet would run as a formula (a name starting with "=", "+", "-" or "@") are
written with a leading apostrophe (`idia.io.csv_text`), as OWASP's CSV-injection guidance says."""

from __future__ import annotations

import csv
import gzip
import os
import tempfile
from pathlib import Path
from typing import Iterator

from idia.attack.decide.evidence import NO_VOTE, Evidence
from idia.attack.inputs.people import Person
from idia.attack.inputs.question import Question
from idia.attack.record.build import offsets
from idia.io import csv_text

SCORES_COLUMNS = ("set", "person", "image", "image_sha256", "prompt_index", "template", "predicted",
                  "predicted_similarity", "true_similarity", "true_rank", "true_log_prob")


GZIP_ABOVE_ROWS = 1_000_000  # scores of larger audits are written gzip-compressed (scores.csv.gz)


def score_rows(everyone: list[Person], is_reference, ev: Evidence, templates, question: Question) -> Iterator[tuple]:
    """The raw answers, one row per image and prompt: every figure in results.json can be recomputed from them."""
    bounds = offsets(ev, len(everyone))
    templates = [csv_text(t) for t in templates]
    for i, person in enumerate(everyone):
        group = "reference" if is_reference[i] else "audit"
        name = csv_text(person.name)
        for ph, row in zip(person.photos, range(bounds[i], bounds[i + 1])):
            file = csv_text(str(ph.path))
            for j, t in enumerate(templates):
                c = ev.prediction[row, j]
                yield (group, name, file, ph.sha256, j, t, "" if c == NO_VOTE else csv_text(question.name_of(i, c)),
                       f"{ev.prediction_similarity[row, j]:.6f}", f"{ev.true_similarity[row, j]:.6f}",
                       int(ev.true_rank[row, j]), f"{ev.true_log_prob[row, j]:.6f}")


def stage_scores(rows: Iterator[tuple], n_rows: int, folder: Path) -> tuple[Path, str, str]:
    """Stream the rows to a temporary file in `folder` (gzip above GZIP_ABOVE_ROWS); (temporary path, the
    table's name, SHA-256 of the bytes written). Nothing visible changes until `commit_scores`."""
    import hashlib
    name = "scores.csv.gz" if n_rows > GZIP_ABOVE_ROWS else "scores.csv"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    digest = hashlib.sha256()

    class _Hashing:
        def __init__(self, raw):
            self.raw = raw

        def write(self, b):
            digest.update(b)
            return self.raw.write(b)

        def flush(self):
            self.raw.flush()

    try:
        with os.fdopen(fd, "wb") as raw:
            sink = _Hashing(raw)
            stream = gzip.GzipFile(fileobj=sink, mode="wb", mtime=0) if name.endswith(".gz") else sink
            text = _TextSink(stream)
            w = csv.writer(text, lineterminator="\n")
            w.writerow(SCORES_COLUMNS)
            for row in rows:
                w.writerow(row)
            text.flush()
            if stream is not sink:
                stream.close()
            raw.flush()
            os.fsync(raw.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp), name, digest.hexdigest()


def commit_scores(tmp: Path, name: str, folder: Path) -> Path:
    """Put a staged table in place; a table of the other name is removed, so a folder never holds two."""
    target = folder / name
    os.replace(tmp, target)
    other = folder / ("scores.csv" if name.endswith(".gz") else "scores.csv.gz")
    other.unlink(missing_ok=True)
    return target


def write_scores(rows: Iterator[tuple], n_rows: int, folder: Path) -> tuple[Path, str]:
    """Stream the rows to scores.csv (scores.csv.gz above GZIP_ABOVE_ROWS) atomically; (path, SHA-256 of the
    bytes written)."""
    tmp, name, digest = stage_scores(rows, n_rows, folder)
    return commit_scores(tmp, name, folder), digest


class _TextSink:
    """csv writes str; buffer it and hand bytes to the binary stream in large pieces."""

    def __init__(self, stream, limit: int = 1 << 20):
        self.stream, self.parts, self.size, self.limit = stream, [], 0, limit

    def write(self, s: str):
        self.parts.append(s)
        self.size += len(s)
        if self.size >= self.limit:
            self.flush()
        return len(s)

    def flush(self):
        if self.parts:
            self.stream.write("".join(self.parts).encode("utf-8"))
            self.parts, self.size = [], 0
