"""Webdataset tar shards: the members of a sample share a key (the name up to the first dot of its file name);
the caption is key.txt, or a caption field of key.json (found by name, or --column); the image is key.jpg,
key.jpeg, key.png or key.webp. Read as a stream, one piece per shard; image bytes are read only when photos are
gathered, and never beyond MAX_IMAGE_BYTES."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path, PurePosixPath
from typing import Iterator

from idia.attack.inputs.captions.formats import (
    CAPTION_COLUMNS,
    Options,
    Piece,
    Record,
    as_caption,
    pick_column,
    register,
)
from idia.attack.inputs.photos import IMAGE_SUFFIXES
from idia.errors import InputError

MAX_CAPTION_BYTES = 1 << 20
MAX_IMAGE_BYTES = 64 << 20


def _split(name: str) -> tuple[str, str]:
    """(key, extension) of a member: 'shard/000123.jpg' -> ('shard/000123', 'jpg'); 'a/x.seg.json' -> ('a/x',
    'seg.json')."""
    p = PurePosixPath(name)
    stem, _, ext = p.name.partition(".")
    return str(p.parent / stem) if str(p.parent) != "." else stem, ext.lower()


def _caption(path: Path, ext: str, data: bytes, options: Options) -> str | None:
    if ext == "txt":
        return as_caption(data.decode("utf-8", "replace").strip())
    try:
        obj = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(obj, dict):
        return None
    column = pick_column(path, list(obj), options.column, CAPTION_COLUMNS) if options.column is None else (
        options.column if options.column in obj else None)
    return as_caption(obj.get(column)) if column else None


@register
class WebdatasetFormat:
    name = "webdataset"
    suffixes = (".tar",)

    def pieces(self, path: Path, options: Options) -> list[Piece]:
        return [Piece(self.name, str(path), None, None, path.stat().st_size)]

    def has_images(self, path: Path, options: Options) -> bool:
        return True

    def read(self, piece: Piece, options: Options) -> Iterator[Record]:
        path = Path(piece.path)
        try:
            with tarfile.open(path, "r|*") as tar:
                yield from self._samples(path, tar, options)
        except (tarfile.TarError, OSError, EOFError) as e:
            raise InputError(f"{path}: not a readable tar shard ({e})") from None

    def _samples(self, path: Path, tar, options: Options) -> Iterator[Record]:
        key, caption, image, image_ext = None, None, None, None
        for member in tar:
            if not member.isfile():
                continue
            k, ext = _split(member.name)
            if k != key:
                if key is not None and caption is not None:
                    yield Record(caption, key, image, image_ext)
                key, caption, image, image_ext = k, None, None, None
            if ext in ("txt", "json") and member.size <= MAX_CAPTION_BYTES and caption is None:
                caption = _caption(path, ext, tar.extractfile(member).read(), options)
            elif f".{ext}" in IMAGE_SUFFIXES:
                image_ext = f".{ext}"
                if options.with_images and member.size <= MAX_IMAGE_BYTES:
                    image = tar.extractfile(member).read()
        if key is not None and caption is not None:
            yield Record(caption, key, image, image_ext)
