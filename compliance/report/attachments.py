"""Files a report's PDF carries: bytes idia made (never fetched), each with its SHA-256 printed in the pages.

They are handed to weasyprint as `Attachment(string=...)`, never as a URL, so the data:-only fetcher stays the
only way anything is loaded. CSV cells a spreadsheet would run as a formula are written as text.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass

from idia.io import csv_text

# The record is attached to its audit PDF up to this size (it is held in memory anyway; the PDF compresses it).
ATTACH_RECORD_MAX_BYTES = 256 * 2**20


@dataclass(frozen=True)
class Attachment:
    """A file carried inside the PDF: bytes idia made (never fetched), with its SHA-256 printed in the pages."""

    name: str
    data: bytes
    description: str
    relationship: str = "Data"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return len(self.data)


def csv_bytes(header: tuple, rows) -> bytes:
    """A UTF-8 CSV of `rows` under `header`, formula-like text cells made inert."""
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([csv_text(v) for v in row] for row in rows)
    return buf.getvalue().encode("utf-8")


def size_text(n: int) -> str:
    return f"{n:,} bytes" if n < 2**20 else f"{n / 2**20:,.1f} MB"
