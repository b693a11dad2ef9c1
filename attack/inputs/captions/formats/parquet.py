"""Parquet (LAION's metadata shards): the caption column found by name (LAION's is TEXT) or given (--column);
one piece per row group, read in batches, so memory stays bounded by a batch. Needs pyarrow."""

from __future__ import annotations

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

BATCH_ROWS = 65_536


def _file(path: Path):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(f"{path}: reading Parquet needs pyarrow: pip install pyarrow") from None
    try:
        return pq.ParquetFile(path)
    except Exception as e:  # noqa: BLE001 -- pyarrow raises several types for a file that is not Parquet
        raise InputError(f"{path}: not a readable Parquet file ({str(e).splitlines()[0] if str(e) else e})") \
            from None


@register
class ParquetFormat:
    name = "parquet"
    suffixes = (".parquet",)

    def pieces(self, path: Path, options: Options) -> list[Piece]:
        pf = _file(path)
        caption_column(path, pf.schema_arrow.names, options.column)
        meta = pf.metadata
        return [Piece(self.name, str(path), g, g + 1, max(1, meta.row_group(g).total_byte_size))
                for g in range(meta.num_row_groups)]

    def has_images(self, path: Path, options: Options) -> bool:
        names = _file(path).schema_arrow.names
        return pick_column(path, names, options.image_column, IMAGE_COLUMNS, "image") is not None

    def read(self, piece: Piece, options: Options) -> Iterator[Record]:
        path = Path(piece.path)
        pf = _file(path)
        names = pf.schema_arrow.names
        column = caption_column(path, names, options.column)
        image_column = pick_column(path, names, options.image_column, IMAGE_COLUMNS, "image")
        columns = [column] + ([image_column] if image_column and image_column != column else [])
        row = 0
        for batch in pf.iter_batches(batch_size=BATCH_ROWS, row_groups=[piece.start], columns=columns):
            captions = batch.column(0).to_pylist()
            images = batch.column(1).to_pylist() if len(columns) > 1 else [None] * len(captions)
            for caption, image_value in zip(captions, images):
                row += 1
                caption = as_caption(caption)
                if caption is None:
                    continue
                image = local_image(path, image_value) if image_column else None
                yield Record(caption, f"group {piece.start} row {row}", image,
                             image.suffix.lower() if image else None)
