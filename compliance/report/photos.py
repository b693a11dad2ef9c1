"""Thumbnails of a person's photos for a takedown report, only when asked for (`--include-photos`).

Faces are biometric data (GDPR Art. 9), so a report carries none by default. When asked, a photo is embedded
only if the file still has the SHA-256 the record holds (so the picture shown is the one the attack examined),
and only as a small PNG re-encoded from its pixels: no metadata of the original file travels with it.
"""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from idia.attack.inputs.photos import NotRegularFile, decode_rgb, open_regular

THUMB_PX = 96
MAX_BYTES = 50 << 20


@dataclass
class Thumbnail:
    file: str
    sha256: str
    uri: str | None  # data:image/png;base64,... or None when the photo could not be shown
    note: str  # why it is not shown, or "" when it is


def thumbnail(file: str, sha256: str, size: int = THUMB_PX) -> Thumbnail:
    """A `size`-pixel PNG data: URI of the photo, if the file on disk is the one the record names."""
    path = Path(file)
    try:
        with open_regular(path) as f:
            data = f.read(MAX_BYTES + 1)
    except NotRegularFile:
        return Thumbnail(file, sha256, None, "not a regular file; not shown")
    except OSError:
        return Thumbnail(file, sha256, None, "file not found where the record says; not shown")
    if len(data) > MAX_BYTES:
        return Thumbnail(file, sha256, None, "file larger than a photo should be; not shown")
    if hashlib.sha256(data).hexdigest() != sha256:
        return Thumbnail(file, sha256, None, "file changed since the attack (SHA-256 differs); not shown")
    try:
        im = decode_rgb(io.BytesIO(data), file)  # the attack's own decode: same formats, same orientation
        im.thumbnail((size, size))
        out = io.BytesIO()
        im.save(out, format="PNG", optimize=True)
    except Exception:  # noqa: BLE001 -- any decoder failure (bomb, damage, unknown format): not shown
        return Thumbnail(file, sha256, None, "not a readable image; not shown")
    return Thumbnail(file, sha256, "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii"), "")
