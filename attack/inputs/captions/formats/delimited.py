"""CSV and TSV with a header row (.gz too): the caption column found by name or given (--column), and optionally
a local image file column (Hugging Face's metadata.csv: file_name). A file is one piece: quoted fields may hold
line breaks, so a byte range cannot be cut safely."""

from __future__ import annotations

import csv
import gzip
import io
import sys
from pathlib import Path
from typing import Iterator

from idia.attack.inputs.captions.formats import (
    IMAGE_COLUMNS,
    Options,
    Piece,
    Record,
    as_caption,
    caption_column,
    local_image,
    pick_column,
    register,
)
from idia.errors import InputError

csv.field_size_limit(min(sys.maxsize, 1 << 24))  # a 16 MiB caption is the longest read


def _open(path: Path):
    raw = gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")


def _delimiter(path: Path) -> str:
    return "\t" if ".tsv" in path.name.lower() else ","


def _header(path: Path) -> list[str]:
    try:
        with _open(path) as f:
            header = next(csv.reader(f, delimiter=_delimiter(path)), [])
    except (OSError, EOFError, csv.Error) as e:
        raise InputError(f"{path}: cannot be read as a table ({e})") from None
    return [h.lstrip("\ufeff") for h in header]


@register
class DelimitedFormat:
    name = "delimited"
    suffixes = (".csv", ".tsv", ".csv.gz", ".tsv.gz")

    def pieces(self, path: Path, options: Options) -> list[Piece]:
        caption_column(path, _header(path), options.column)
        return [Piece(self.name, str(path), None, None, path.stat().st_size)]

    def has_images(self, path: Path, options: Options) -> bool:
        return pick_column(path, _header(path), options.image_column, IMAGE_COLUMNS, "image") is not None

    def read(self, piece: Piece, options: Options) -> Iterator[Record]:
        path = Path(piece.path)
        header = _header(path)
        c = header.index(caption_column(path, header, options.column))
        image_name = pick_column(path, header, options.image_column, IMAGE_COLUMNS, "image")
        im = header.index(image_name) if image_name else None
        try:
            with _open(path) as f:
                rows = csv.reader(f, delimiter=_delimiter(path))
                next(rows, None)
                for number, row in enumerate(rows, start=2):
                    caption = as_caption(row[c]) if c < len(row) else None
                    if caption is None:
                        continue
                    image = local_image(path, row[im]) if im is not None and im < len(row) else None
                    yield Record(caption, f"row {number}", image, image.suffix.lower() if image else None)
        except (OSError, EOFError, csv.Error) as e:
            raise InputError(f"{path}: cannot be read as a table ({e})") from None
