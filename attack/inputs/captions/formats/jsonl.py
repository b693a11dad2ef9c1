"""JSON Lines: one object per line with a caption field (found by name, or --column), and optionally a local
image file field (Hugging Face's metadata.jsonl: file_name). Split by byte range; .gz is one piece."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from idia.attack.inputs.captions.formats import (
    IMAGE_COLUMNS,
    Options,
    Piece,
    Record,
    as_caption,
    byte_pieces,
    caption_column,
    local_image,
    pick_column,
    read_lines,
    register,
)
from idia.errors import InputError


def _row(path: Path, offset: int, line: bytes) -> dict | None:
    if not line.strip():
        return None
    try:
        row = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: the line at byte {offset} is not JSON ({e.msg if hasattr(e, 'msg') else e})") \
            from None
    if not isinstance(row, dict):
        raise InputError(f"{path}: the line at byte {offset} is not a JSON object")
    return row


def _first_row(path: Path) -> dict:
    for offset, line in read_lines(Piece("jsonl", str(path), None, None, 0)):
        row = _row(path, offset, line)
        if row is not None:
            return row
    return {}


@register
class JsonlFormat:
    name = "jsonl"
    suffixes = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")

    def pieces(self, path: Path, options: Options) -> list[Piece]:
        caption_column(path, list(_first_row(path)), options.column)  # fail early, naming the file
        return byte_pieces(self.name, path)

    def has_images(self, path: Path, options: Options) -> bool:
        return pick_column(path, list(_first_row(path)), options.image_column, IMAGE_COLUMNS, "image") is not None

    def read(self, piece: Piece, options: Options) -> Iterator[Record]:
        path = Path(piece.path)
        column = image_column = None
        for offset, line in read_lines(piece):
            row = _row(path, offset, line)
            if row is None:
                continue
            if column is None:
                column = caption_column(path, list(row), options.column)
                image_column = pick_column(path, list(row), options.image_column, IMAGE_COLUMNS, "image")
            caption = as_caption(row.get(column))
            if caption is None:
                continue
            image = local_image(path, row.get(image_column)) if image_column else None
            yield Record(caption, f"byte {offset}", image, image.suffix.lower() if image else None)
