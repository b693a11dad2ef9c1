"""`idia scan`: read a training set's captions, count the people they name, and gather their photos.

  plan     formats.find_sources → every file's pieces (row groups, byte ranges, shards), checked up front
  count    engines: each piece read and its names found (extract) in a worker, one Tally per piece;
           tally.Counts merges them exactly in bounded memory
  write    names.csv (name, count, alone, forms, examples), by count, and scan.json (what was read, how, totals)
  gather   with photos_out: a second pass copies or hard-links each image whose caption names exactly one of the
           people with at least min_photos such captions into photos_out/<Name>/ (gather.py)

Every file is written atomically; an interrupted scan leaves nothing half written.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path

from idia.attack.inputs.captions import formats
from idia.attack.inputs.captions.engines import make_runner
from idia.attack.inputs.captions.finder import make_extractor
from idia.attack.inputs.captions.tally import (
    ALONE,
    COUNT,
    EXAMPLES,
    FORMS,
    STRONG,
    Counts,
    Tally,
    display_name,
)
from idia.errors import InputError
from idia.io import atomic_text_writer, atomic_write_json

NAMES_COLUMNS = ("name", "count", "alone", "forms", "examples")
SCAN_KIND = "idia-scan"


@dataclass
class ScanSettings:
    sources: list[Path]
    out: Path
    column: str | None = None
    image_column: str | None = None
    min_count: int = 1
    ner_model: Path | None = None
    photos_out: Path | None = None
    min_photos: int = 5
    link: bool = True
    engine: str = "local"
    ray_address: str | None = None
    workers: int | None = None
    max_in_memory: int = 500_000
    partitions: int = 256
    progress: bool = True
    command: str | None = None

    def validate(self) -> "ScanSettings":
        for flag, value, low in (("--min-count", self.min_count, 1), ("--min-photos", self.min_photos, 1),
                                 ("--workers", self.workers, 1), ("--max-names-in-memory", self.max_in_memory, 1)):
            if value is not None and value < low:
                raise InputError(f"{flag} must be at least {low}, got {value}")
        if self.ray_address is not None and self.engine != "ray":
            raise InputError("--ray-address is for --engine ray")
        return self


@dataclass
class ScanResult:
    people: int  # rows written to names.csv
    captions: int
    captions_naming: int
    names_csv: Path
    record: dict = field(default_factory=dict)
    photos: dict | None = None


def scan_piece(piece: formats.Piece, context: dict) -> tuple[Tally, int]:
    """One piece's tally (run in a worker), and its size for the progress bar."""
    extract = make_extractor(context["ner_model"]).extract
    fmt = formats.FORMATS.get(piece.format)
    tally = Tally()
    for record in fmt.read(piece, context["options"]):
        tally.add(record.caption, extract(record.caption))
    return tally, piece.size


def plan(settings: ScanSettings, options: formats.Options) -> list[formats.Piece]:
    pieces = []
    for path, fmt in formats.find_sources(settings.sources):
        pieces.extend(fmt.pieces(path, options))
    return pieces


def keep_row(min_count: int):
    """A person is listed when named strongly at least once (see extract) and in at least min_count captions."""
    return lambda entry: entry[STRONG] > 0 and entry[COUNT] >= min_count


def _progress(settings: ScanSettings, pieces, desc: str):
    from tqdm.auto import tqdm
    return tqdm(total=sum(p.size for p in pieces), unit="B", unit_scale=True, desc=desc,
                disable=not settings.progress)


def count_people(settings: ScanSettings, pieces: list[formats.Piece], options: formats.Options) -> Counts:
    """The count stage: every piece read by the engine, tallies merged as they arrive."""
    runner = make_runner(settings.engine, workers=settings.workers, address=settings.ray_address)
    counts = Counts(settings.max_in_memory, settings.partitions)
    context = {"options": options, "ner_model": str(settings.ner_model) if settings.ner_model else None}
    try:
        with _progress(settings, pieces, "scan captions") as bar:
            for tally, size in runner.map(scan_piece, pieces, context):
                counts.add(tally)
                bar.update(size)
                bar.set_postfix(captions=f"{counts.captions:,}", refresh=False)
    except BaseException:
        counts.close()  # no spill files left behind by a bad file or an interruption
        raise
    counts.engine = runner.describe()
    return counts


def names_rows(counts: Counts, min_count: int):
    """names.csv's rows, by count: (name, count, alone, forms, examples, key)."""
    for key, e in counts.rows(keep_row(min_count)):
        forms = " | ".join(f"{f} ({n})" for f, n in sorted(e[FORMS].items(), key=lambda kv: (-kv[1], kv[0])))
        yield display_name(e[FORMS]), e[COUNT], e[ALONE], forms, " || ".join(e[EXAMPLES]), key


def write_names(rows, path: Path, alone_at_least: int | None = None) -> tuple[int, dict[str, str]]:
    """Stream the rows into names.csv (atomically); returns how many, and {key: name} of the people named alone
    in at least `alone_at_least` captions (the people whose photos are gathered; none when it is None)."""
    chosen: dict[str, str] = {}
    n = 0
    with atomic_text_writer(path) as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(NAMES_COLUMNS)
        for name, count, alone, forms, examples, key in rows:
            writer.writerow((name, count, alone, forms, examples))
            n += 1
            if alone_at_least is not None and alone >= alone_at_least:
                chosen[key] = name
    return n, chosen


def scan_captions(settings: ScanSettings, warn=None) -> ScanResult:
    """Count the people the sources' captions name; write names.csv and scan.json into settings.out (and
    gather photos when settings.photos_out is given)."""
    settings.validate()
    t0 = time.perf_counter()
    options = formats.Options(column=settings.column, image_column=settings.image_column)
    make_extractor(str(settings.ner_model) if settings.ner_model else None)  # a bad --ner-model fails first
    pieces = plan(settings, options)
    if settings.photos_out is not None:
        _check_images(settings, options)
    counts = count_people(settings, pieces, options)
    t1 = time.perf_counter()
    out = Path(settings.out)
    n_people, people = write_names(names_rows(counts, settings.min_count), out / "names.csv",
                                   settings.min_photos if settings.photos_out is not None else None)
    record = _record(settings, pieces, counts, n_people, {"count_s": round(t1 - t0, 3)})
    result = ScanResult(n_people, counts.captions, counts.captions_naming, out / "names.csv", record)
    if settings.photos_out is not None:
        from idia.attack.inputs.captions.gather import gather_photos
        result.photos = gather_photos(settings, pieces, people, warn)
        record["photos"] = {k: v for k, v in result.photos.items() if k != "people_names"}
    record["timings"]["total_s"] = round(time.perf_counter() - t0, 3)
    atomic_write_json(out / "scan.json", record)
    return result


def _check_images(settings: ScanSettings, options: formats.Options) -> None:
    for path, fmt in formats.find_sources(settings.sources):
        if fmt.has_images(path, options):
            return
    raise InputError(f"{settings.sources[0]}: --photos-out needs images beside the captions (webdataset shards, or "
                     "an image file column such as file_name); these sources have none")


def _record(settings: ScanSettings, pieces, counts: Counts, n_people: int, timings: dict) -> dict:
    from idia.manifest import command_line, utc_now
    from idia.runtime import library_version
    files: dict[str, dict] = {}
    for p in pieces:
        f = files.setdefault(p.path, {"file": p.path, "format": p.format, "pieces": 0, "bytes": 0})
        f["pieces"] += 1
        f["bytes"] += p.size
    return {
        "kind": SCAN_KIND, "schema_version": 1, "tool_version": library_version("idia") or "unknown",
        "command": settings.command or command_line(), "created_utc": utc_now(),
        "sources": list(files.values()),
        "options": {"column": settings.column, "image_column": settings.image_column,
                    "min_count": settings.min_count},
        "extractor": make_extractor(str(settings.ner_model) if settings.ner_model else None).describe(),
        "engine": getattr(counts, "engine", {"name": settings.engine}),
        "captions": counts.captions, "captions_naming_people": counts.captions_naming, "people": n_people,
        "memory": {"max_in_memory": counts.max_in_memory, "partitions": counts.partitions, "spills": counts.spills,
                   "peak_entries_in_memory": counts.peak_in_memory},
        "timings": timings,
    }
