"""Photos: one safe, upright decode of a file, the same for the model and for a report's thumbnail.

Only regular files are opened (checked on the open descriptor, so a FIFO never blocks); only Pillow's own JPEG,
PNG and WebP decoders run; each photo is decoded in full with its EXIF orientation applied, between 16x16 pixels
and 40 megapixels (larger is treated as a decompression bomb). 16-bit grayscale is scaled to 8 bits (Pillow would
clip it to white).

A photo's bytes are read once per use, and the SHA-256 recorded is the hash of the very bytes decoded: the scan
hashes and checks what it read (`check_photo`), and the encoder decodes only bytes whose hash is the one the scan
recorded (`load_checked`), so a photo swapped during a run is refused instead of cached under another's hash."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import types
import warnings
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


# The decoders Pillow may use: the formats we document, each decoded by Pillow's own code. Naming them keeps
# Pillow from handing a file to Ghostscript (EPS) or any other format plugin, whatever its bytes claim to be.
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP")


MAX_PIXELS = 40_000_000  # a 40-megapixel photo is the largest we open; anything bigger is treated as a bomb


MIN_SIDE = 16  # smaller than 16x16 pixels is an icon, not a photo of a face


MAX_PHOTO_BYTES = 512 << 20  # far above a 40-megapixel PNG; a larger "photo" is not read into memory


class NotRegularFile(OSError):
    """A FIFO, device or socket where a photo was expected: never read (a FIFO would block forever)."""


def open_regular(path: str | Path) -> BinaryIO:
    """Open `path` for reading only if it is a regular file. The check is made on the opened descriptor
    (O_NONBLOCK, so opening a FIFO cannot hang), so no swap between check and read is possible."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(f"not a regular file ({_file_kind(mode)})")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _file_kind(mode: int) -> str:
    for test, word in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return word
    return "a special file"


def _strict_loader():
    """Pillow's ImageFile.load, reading LOAD_TRUNCATED_IMAGES as False whatever the process-wide flag says.

    WeasyPrint sets that flag for the whole process when it is imported, which would let a truncated photo decode
    "successfully" with grey pixels. Flipping it around each decode would change it for every other thread; this
    copy of the loader sees its own False instead, so a photo decodes whole or not at all, and nothing global
    changes. JPEG's reader would still pad a premature end with an end-of-image marker when the flag is set; it
    does that once per image, so the decode marks it as done already (`_ended`). WebP has its own loader, whose
    truncation check does not read the flag."""
    load = ImageFile.ImageFile.load
    return types.FunctionType(load.__code__, {**vars(ImageFile), "LOAD_TRUNCATED_IMAGES": False}, load.__name__,
                              load.__defaults__, load.__closure__)


_load_whole = _strict_loader()


def decode_rgb(fp: BinaryIO, name: str = "image", draft_to: int | None = None) -> Image.Image:
    """Fully decode an image to upright RGB pixels: JPEG, PNG or WebP only, at most MAX_PIXELS, at least
    MIN_SIDE on each side, EXIF orientation applied. The model's input and the report's thumbnail both come
    from here, so the model sees the photo the way a person looking at the report does."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(fp, formats=IMAGE_FORMATS) as im:
            if im.width * im.height > MAX_PIXELS:
                raise Image.DecompressionBombError(
                    f"{im.width}x{im.height} pixels is over the {MAX_PIXELS:,}-pixel limit")
            if min(im.width, im.height) < MIN_SIDE:
                raise TooSmall(f"{im.width}x{im.height} pixels is below the {MIN_SIDE}x{MIN_SIDE} minimum for a photo")
            if draft_to and im.format == "JPEG":
                # The JPEG decoder scales by 1/2, 1/4 or 1/8 in the DCT domain: it picks the strongest reduction
                # that keeps both sides at least `draft_to` (which the caller sets to twice the model's input),
                # so the model's own antialiased resize still does the last, gentle step.
                im.draft("RGB", (draft_to, draft_to))
            if type(im).load is ImageFile.ImageFile.load:
                im._ended = True  # JPEG: never pretend a truncated file ended (see _strict_loader)
                _load_whole(im)
            upright = ImageOps.exif_transpose(im)
            rgb = _to_8bit(upright).convert("RGB")
            rgb.load()
            return rgb


class TooSmall(ValueError):
    pass


class UnsupportedMode(ValueError):
    """Pixels whose values cannot be read as a photo's (a float or 32-bit integer image)."""


class PhotoChanged(OSError):
    """The file's bytes are not the ones the scan hashed: it changed during the run."""


def _to_8bit(im: Image.Image) -> Image.Image:
    """16-bit grayscale (modes I;16*, and I holding 16-bit values) scaled to 8 bits, rounding (v * 255 / 65535);
    Pillow's own conversion clips everything above 255 to white. Other modes are left to Pillow."""
    if not (im.mode.startswith("I;16") or im.mode == "I"):
        if im.mode == "F":
            raise UnsupportedMode("floating-point pixels (mode F) are not a photo")
        return im
    import numpy as np
    values = np.asarray(im).astype(np.int64)
    if values.size and (values.min() < 0 or values.max() > 65535):
        raise UnsupportedMode(f"32-bit integer pixels (mode {im.mode}) outside the 16-bit range")
    return Image.fromarray(((values * 255 + 32767) // 65535).astype(np.uint8), mode="L")


def read_photo(path: str | Path) -> bytes:
    """A photo file's bytes: a regular file only (a FIFO never blocks), at most MAX_PHOTO_BYTES."""
    with open_regular(path) as f:
        if os.fstat(f.fileno()).st_size > MAX_PHOTO_BYTES:
            raise Image.DecompressionBombError(f"the file is over the {MAX_PHOTO_BYTES:,}-byte limit for a photo")
        data = f.read(MAX_PHOTO_BYTES + 1)
    if len(data) > MAX_PHOTO_BYTES:
        raise Image.DecompressionBombError(f"the file is over the {MAX_PHOTO_BYTES:,}-byte limit for a photo")
    return data


def load_checked(path: str | Path, sha256: str | None = None, draft_to: int | None = None) -> Image.Image:
    """The photo at `path`, read once and decoded from those bytes, after checking that they hash to `sha256`
    (the hash the scan recorded); PhotoChanged otherwise. The encoder's engines, local and Ray, call this."""
    data = read_photo(path)
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise PhotoChanged("its bytes changed after the scan hashed it (SHA-256 differs); nothing from it was used")
    return decode_rgb(io.BytesIO(data), str(path), draft_to)


def load_rgb(path: str | Path, draft_to: int | None = None) -> Image.Image:
    """The safe, oriented decode of one photo file (see `decode_rgb`), when no hash is recorded to check it
    against (`load_checked` when there is). Raises OSError (NotRegularFile among them) or the decoder's error for
    a bad file. `draft_to`: decode JPEGs reduced in the DCT domain to no less than this many pixels a side
    (`--fast-decode`)."""
    return load_checked(path, None, draft_to)


def check_image(path: Path) -> str | None:
    """None if the file is a photo we can decode safely (decoded in full, not just its header), else why not."""
    return check_photo(path)[1]


_CHECKED: dict[tuple, tuple[str | None, str | None]] = {}  # this process's passed checks of unchanged files
_CHECKED_MAX = 500_000


def check_photo(path: Path) -> tuple[str | None, str | None]:
    """(SHA-256 of the bytes read, None) if the file is a photo we can decode safely (those same bytes decoded in
    full, not just a header), else (None, why not).

    A regular file that passed before in this process, and is unchanged since (same device, inode, size,
    modification and change times, to the nanosecond; reached by any path or link), is not read again: a
    verification attacks the same photos a dozen times, through folders of links, and decoding them is most of a
    scan. A file that failed is read again (its reason names its path)."""
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return None, (f"not an image file type ({path.suffix or 'no extension'}); expected one of "
                      f"{', '.join(IMAGE_SUFFIXES)}")
    key = _unchanged_key(path)
    if key is not None and key in _CHECKED:
        return _CHECKED[key]
    result = _check_photo(path)
    if key is not None and result[1] is None and key == _unchanged_key(path):  # passed, unchanged while read
        if len(_CHECKED) >= _CHECKED_MAX:
            _CHECKED.clear()
        _CHECKED[key] = result
    return result


def _unchanged_key(path: Path) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _check_photo(path: Path) -> tuple[str | None, str | None]:
    try:
        data = read_photo(path)
        decode_rgb(io.BytesIO(data), str(path))
    except NotRegularFile as e:
        return None, str(e)
    except UnsupportedMode as e:
        return None, f"unsupported pixels: {e}"
    except Exception as e:  # noqa: BLE001 -- every decoder failure means a photo that is skipped, never fatal
        return None, _why_not(e)
    return hashlib.sha256(data).hexdigest(), None


def _why_not(e: Exception) -> str:
    if isinstance(e, TooSmall):
        return f"too small: {e}"
    if isinstance(e, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return f"refused: decompression bomb ({e})"
    if isinstance(e, UnidentifiedImageError):
        return f"not a readable image (only {', '.join(IMAGE_FORMATS)} are opened)"
    if isinstance(e, OSError) and e.strerror:
        return f"cannot read ({e.strerror})"
    detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return f"damaged image ({detail})"
