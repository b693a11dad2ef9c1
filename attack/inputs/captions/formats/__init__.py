"""Caption sources: one module per format a training set comes in, each registered with `@register`.

  parquet      LAION-style Parquet; the caption column found by name or given (`--column`); split by row group
  jsonl        JSON Lines (also .ndjson, and .gz); split by byte range
  delimited    CSV and TSV with a header row (also .gz); a file is one piece (quoted fields may hold newlines)
  text         plain text, one caption per line (also .gz); split by byte range
  webdataset   tar shards: key.txt, or key.json with a caption field, beside key.jpg, key.png or key.webp

A format splits a file into `Piece`s (the unit of parallel work and of the progress bar), and reads a piece as
`Record`s. Where a record can point at its image (webdataset's key.jpg; a file column in JSONL or CSV, such as
Hugging Face's `file_name`), the photo gathering reads it from there. A file that is not what its name says, or
lacks the caption column, is an InputError naming it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol

from idia.errors import InputError
from idia.registry import Registry

# Column names that hold captions, in the order they are tried (case-insensitively) when --column is not given.
CAPTION_COLUMNS = ("caption", "text", "captions", "alt_text", "alt", "description", "title", "prompt", "sentence")
# Columns that name a local image file, relative to the file that lists it (Hugging Face's imagefolder: file_name).
IMAGE_COLUMNS = ("file_name", "image_path", "image", "file", "filepath", "path")
PIECE_BYTES = 32 << 20  # byte-range pieces of line formats: about 32 MiB each


@dataclass(frozen=True)
class Piece:
    """A part of one source file: rows or bytes [start, stop) (None: the whole file), `size` bytes of it."""

    format: str
    path: str
    start: int | None
    stop: int | None
    size: int


@dataclass(frozen=True)
class Options:
    column: str | None = None  # the caption column (default: the first of CAPTION_COLUMNS present)
    image_column: str | None = None  # the image file column (default: the first of IMAGE_COLUMNS present)
    with_images: bool = False  # read image bytes too (the photo gathering; only webdataset holds them)


@dataclass
class Record:
    """One caption, and where its image is: `image` is its bytes (webdataset, with_images), a local path, or
    None; `ref` names the sample within its source (a tar key, a row or line number)."""

    caption: str
    ref: str
    image: bytes | Path | None = None
    image_ext: str | None = None


class CaptionFormat(Protocol):
    name: str
    suffixes: tuple[str, ...]

    def pieces(self, path: Path, options: Options) -> list[Piece]: ...

    def read(self, piece: Piece, options: Options) -> Iterator[Record]: ...

    def has_images(self, path: Path, options: Options) -> bool:
        """Whether this file's records can point at images (decided from its header, not by reading it all)."""


FORMATS: Registry[CaptionFormat] = Registry("caption format", package=__name__)


def register(cls):
    FORMATS.register(cls())
    return cls


def format_of(path: Path) -> CaptionFormat | None:
    name = path.name.lower()
    for fmt in FORMATS:
        if any(name.endswith(s) for s in fmt.suffixes):
            return fmt
    return None


def find_sources(sources: list[str | Path]) -> list[tuple[Path, CaptionFormat]]:
    """Every caption file the sources name: files as given, folders searched recursively (sorted; hidden files
    and files of no known format skipped). A missing source, or none found, is an InputError."""
    found: list[tuple[Path, CaptionFormat]] = []
    for src in sources:
        path = Path(src)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    fmt = format_of(Path(name))
                    if fmt is not None and not name.startswith("."):
                        found.append((Path(root) / name, fmt))
        elif path.exists():
            fmt = format_of(path)
            if fmt is None:
                suffixes = ", ".join(s for f in FORMATS for s in f.suffixes)
                raise InputError(f"{path}: not a caption file idia reads (expected one of {suffixes})")
            found.append((path, fmt))
        else:
            raise InputError(f"{path}: no such file or folder")
    if not found:
        raise InputError(f"{', '.join(map(str, sources))}: holds no caption files (Parquet, JSONL, CSV, TSV, "
                         "text or webdataset tar)")
    return found


def pick_column(path: Path, columns: list[str], wanted: str | None, candidates: tuple[str, ...],
                what: str = "caption") -> str | None:
    """The column to read: `wanted` (which must be there), else the first of `candidates` present (any case);
    None when no candidate is (for captions the caller makes that an error)."""
    if wanted is not None:
        if wanted in columns:
            return wanted
        shown = ", ".join(columns[:12]) + (", ..." if len(columns) > 12 else "")
        raise InputError(f"{path}: has no {what} column {wanted!r} (its columns: {shown or 'none'})")
    lower = {c.lower(): c for c in reversed(columns)}
    for name in candidates:
        if name in lower:
            return lower[name]
    return None


def caption_column(path: Path, columns: list[str], wanted: str | None) -> str:
    column = pick_column(path, columns, wanted, CAPTION_COLUMNS)
    if column is None:
        shown = ", ".join(columns[:12]) + (", ..." if len(columns) > 12 else "")
        raise InputError(f"{path}: no caption column found among {shown or 'no columns'}; name it with --column")
    return column


def as_caption(value) -> str | None:
    """A caption cell as text (None, numbers and empty strings are no caption)."""
    if isinstance(value, str):
        return value if value.strip() else None
    return None


def local_image(path: Path, value) -> Path | None:
    """An image column's value as a local file beside the source (URLs and absolute paths elsewhere are not)."""
    if not isinstance(value, str) or not value or "://" in value:
        return None
    return path.parent / value


def byte_pieces(fmt: str, path: Path) -> list[Piece]:
    """A line-oriented file in pieces of about PIECE_BYTES (each line belongs to the piece it starts in); a
    compressed file is one piece."""
    size = path.stat().st_size
    if path.name.lower().endswith(".gz") or size <= PIECE_BYTES:
        return [Piece(fmt, str(path), None, None, size)]
    edges = list(range(0, size, PIECE_BYTES)) + [size]
    return [Piece(fmt, str(path), a, b, b - a) for a, b in zip(edges, edges[1:])]


def read_lines(piece: Piece) -> Iterator[tuple[int, bytes]]:
    """(byte offset, line) of the lines that start in the piece; whole (decompressed) file when it has no range."""
    import gzip
    path = Path(piece.path)
    if piece.start is None:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        try:
            with opener(path, "rb") as f:
                offset = 0
                for line in f:
                    yield offset, line
                    offset += len(line)
        except (OSError, EOFError) as e:
            raise InputError(f"{path}: cannot be read ({e})") from None
        return
    with open(path, "rb") as f:
        pos = piece.start
        if pos > 0:
            f.seek(pos - 1)
            if f.read(1) != b"\n":
                pos += len(f.readline())  # the line under way belongs to the piece before
        f.seek(pos)
        while pos < piece.stop:
            line = f.readline()
            if not line:
                break
            yield pos, line
            pos += len(line)
