"""Gathering photos for an audit: each image whose caption names exactly one of the chosen people (those named
alone in at least --min-photos captions), into photos_out/<Name>/, ready for `idia attack --people`.

A second pass over the sources, in parallel like the first: a worker reads its piece with the images, finds
the names again, and for a caption naming one chosen person checks the image with the attack's own safe decode
(`inputs.photos.check_image`: JPEG, PNG or WebP only, decoded in full, bombs refused) before it lands. A local
image file is hard-linked (or copied with --copy, or where a link cannot be made); an image inside a tar shard
is written out. Every file appears under its final name in one rename, so an interrupted gathering leaves whole
photos only. A person left with fewer than --min-photos usable photos is removed again. photos.csv (in the scan's
--out) lists every photo with the source and sample it came from.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path

from idia.attack.inputs.captions import formats
from idia.attack.inputs.captions.engines import make_runner
from idia.attack.inputs.captions.finder import make_extractor
from idia.io import atomic_text_writer

PHOTO_COLUMNS = ("person", "file", "source", "sample")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def folder_name(name: str) -> str:
    """A person's folder: their name, with anything a path cannot hold replaced."""
    safe = name.replace("/", "-").replace("\\", "-").replace("\x00", "").strip()
    return safe if safe and not safe.startswith(".") else f"_{safe}"


def _file_name(source: str, ref: str, ext: str) -> str:
    return f"{_UNSAFE.sub('_', Path(source).name.split('.')[0])}-{_UNSAFE.sub('_', ref).strip('_')}{ext}"


def _land(record: formats.Record, dest: Path, link: bool) -> str | None:
    """Put the record's image at dest (checked, whole or not at all); None when done, else why not."""
    from idia.attack.inputs.photos import check_image
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".gather-", suffix=dest.suffix)
    os.close(fd)
    tmp = Path(tmp)
    try:
        if isinstance(record.image, bytes):
            tmp.write_bytes(record.image)
            why = check_image(tmp)
        else:
            why = check_image(record.image)
            if why is None:
                tmp.unlink()
                try:
                    if not link:
                        raise OSError("copy asked for")
                    os.link(record.image, tmp)
                except OSError:
                    shutil.copyfile(record.image, tmp)
        if why is None:
            os.replace(tmp, dest)
        return why
    finally:
        tmp.unlink(missing_ok=True)


def gather_piece(piece: formats.Piece, context: dict) -> tuple[list[tuple[str, str, str, str]], Counter, int]:
    """(photos written as (person, file, source, sample), why images were skipped, piece size)."""
    extract = make_extractor(context["ner_model"]).extract
    chosen, out, link = context["chosen"], Path(context["photos_out"]), context["link"]
    written, skipped = [], Counter()
    for record in formats.FORMATS.get(piece.format).read(piece, context["options"]):
        if record.image is None:
            continue
        mentions = extract(record.caption)
        if len(mentions) != 1 or mentions[0].key not in chosen:
            continue
        name = chosen[mentions[0].key]
        ext = record.image_ext or ".jpg"
        dest = out / folder_name(name) / _file_name(piece.path, record.ref, ext)
        if not isinstance(record.image, bytes) and not Path(record.image).exists():
            skipped["image file missing"] += 1
            continue
        why = _land(record, dest, link)
        if why is None:
            written.append((name, str(dest), piece.path, record.ref))
        else:
            skipped[why.split(" (")[0]] += 1
    return written, skipped, piece.size


def gather_photos(settings, pieces: list[formats.Piece], chosen: dict[str, str], warn=None) -> dict:
    """The gathering stage (module docstring); returns its summary for scan.json."""
    from tqdm.auto import tqdm
    out = Path(settings.photos_out)
    out.mkdir(parents=True, exist_ok=True)
    options = formats.Options(column=settings.column, image_column=settings.image_column, with_images=True)
    context = {"options": options, "ner_model": str(settings.ner_model) if settings.ner_model else None,
               "chosen": chosen, "photos_out": str(out), "link": settings.link}
    runner = make_runner(settings.engine, workers=settings.workers, address=settings.ray_address)
    by_person: dict[str, list[tuple[str, str, str, str]]] = {}
    skipped: Counter = Counter()
    with tqdm(total=sum(p.size for p in pieces), unit="B", unit_scale=True, desc="gather photos",
              disable=not settings.progress) as bar:
        for written, why, size in runner.map(gather_piece, pieces, context):
            for row in written:
                by_person.setdefault(row[0], []).append(row)
            skipped.update(why)
            bar.update(size)
    kept, dropped = _keep_enough(by_person, settings.min_photos)
    with atomic_text_writer(Path(settings.out) / "photos.csv") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(PHOTO_COLUMNS)
        for name in sorted(kept):
            writer.writerows(sorted(kept[name], key=lambda r: r[1]))
    if skipped and warn:
        warn(f"{sum(skipped.values())} image(s) not gathered: "
             + "; ".join(f"{n} {why}" for why, n in skipped.most_common(3)))
    return {"folder": str(out), "min_photos": settings.min_photos, "people": len(kept),
            "photos": sum(len(v) for v in kept.values()), "people_with_too_few": dropped,
            "skipped": dict(skipped), "linked": settings.link, "people_names": sorted(kept)}


def _keep_enough(by_person: dict[str, list], min_photos: int) -> tuple[dict[str, list], int]:
    """People with at least min_photos photos; the photos of the others are removed again."""
    kept, dropped = {}, 0
    for name, rows in by_person.items():
        if len(rows) >= min_photos:
            kept[name] = rows
            continue
        dropped += 1
        for _, file, _, _ in rows:
            Path(file).unlink(missing_ok=True)
        try:
            Path(rows[0][1]).parent.rmdir()
        except OSError:
            pass
    return kept, dropped
