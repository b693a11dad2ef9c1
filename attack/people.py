"""People folders: DIR/<Full Name>/*.{jpg,png,webp}. Scanning checks every file before anything is encoded.

A file that is not a readable image is listed and skipped with a warning; a person left with no usable image is
reported as not auditable, never silently dropped; decompression bombs are refused.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from .errors import InputError
from .io import sha256_file
from .names import normalize_name

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
MAX_PIXELS = 40_000_000  # a 40-megapixel photo is the largest we open; anything bigger is treated as a bomb


@dataclass
class Photo:
    path: Path
    sha256: str

    def to_dict(self, root: Path | None = None) -> dict:
        shown = self.path.relative_to(root) if root is not None else self.path
        return {"file": str(shown), "sha256": self.sha256}


@dataclass
class Person:
    name: str
    folder: Path
    photos: list[Photo] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why)

    @property
    def auditable(self) -> bool:
        return bool(self.photos)


def check_image(path: Path) -> str | None:
    """None if the file is an image we can decode safely, else why not (one line)."""
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return f"not an image file type ({path.suffix or 'no extension'}); expected one of {', '.join(IMAGE_SUFFIXES)}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.width * im.height > MAX_PIXELS:
                    return f"refused: {im.width}x{im.height} pixels is over the {MAX_PIXELS:,}-pixel limit (decompression bomb?)"
                im.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return "refused: decompression bomb"
    except UnidentifiedImageError:
        return "not a readable image"
    except (OSError, SyntaxError, ValueError) as e:
        return f"damaged image ({e})"
    return None


def load_rgb(path: Path) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as im:
            return im.convert("RGB")


def scan_people(root: str | Path, max_images: int | None = None, warn=None) -> list[Person]:
    """Every sub-folder of `root` is a person named by the folder; their photos sorted by file name.

    `max_images` keeps the first N usable photos (sorted, so the choice is reproducible)."""
    root = Path(root)
    if not root.exists():
        raise InputError(f"{root}: no such folder of people")
    if not root.is_dir():
        raise InputError(f"{root}: not a folder (expected one sub-folder per person)")
    warn = warn or (lambda msg: warnings.warn(msg, stacklevel=2))
    people: list[Person] = []
    seen: dict[str, Path] = {}
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            warn(f"{entry}: skipped: a file directly in the people folder (photos go in a folder per person)")
            continue
        name = normalize_name(entry.name)
        if not name:
            warn(f"{entry}: skipped: folder name is not a name")
            continue
        if name.casefold() in seen:
            raise InputError(f"{entry}: the same person as {seen[name.casefold()]} (names differ only in case or spacing)")
        seen[name.casefold()] = entry
        person = Person(name=name, folder=entry)
        for file in sorted(entry.iterdir()):
            if file.name.startswith(".") or file.is_dir():
                continue
            if max_images is not None and len(person.photos) >= max_images:
                break
            why = check_image(file)
            if why:
                person.skipped.append((str(file), why))
                warn(f"{file}: skipped: {why}")
                continue
            person.photos.append(Photo(file, sha256_file(file)))
        if not person.photos:
            warn(f"{entry}: {name!r} has no usable image and cannot be audited")
        people.append(person)
    if not people:
        raise InputError(f"{root}: holds no person folders (expected {root}/<Full Name>/*.png)")
    return people
