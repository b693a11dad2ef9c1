"""Plain text: one caption per line (UTF-8; .gz too). Split by byte range; a byte that is not UTF-8 is replaced."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from idia.attack.inputs.captions.formats import Options, Piece, Record, byte_pieces, read_lines, register


@register
class TextFormat:
    name = "text"
    suffixes = (".txt", ".txt.gz")

    def pieces(self, path: Path, options: Options) -> list[Piece]:
        return byte_pieces(self.name, path)

    def has_images(self, path: Path, options: Options) -> bool:
        return False

    def read(self, piece: Piece, options: Options) -> Iterator[Record]:
        for offset, line in read_lines(piece):
            caption = line.decode("utf-8", "replace").strip()
            if caption:
                yield Record(caption, f"byte {offset}")
