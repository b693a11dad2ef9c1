"""People folders: DIR/<Full Name>/*.{jpg,png,webp}. Scanning checks every file before anything is encoded.

A file that is not a readable image is listed and skipped with a warning (every photo is decoded in full when
checked; FIFOs and other special files are never read); a person left with no usable image is reported as not
auditable, never silently dropped; decompression bombs are refused. If nobody is auditable, that is an error.
"""

from __future__ import annotations

import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from idia.attack.inputs.photos import _file_kind, check_image
from idia.errors import InputError
from idia.io import sha256_file
from idia.names import name_key, normalize_name


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
        if name_key(name) in seen:
            raise InputError(f"{entry}: the same person as {seen[name_key(name)]} (the folder names differ only in "
                             "case, spacing or Unicode form)")
        seen[name_key(name)] = entry
        person = Person(name=name, folder=entry)
        for file in sorted(entry.iterdir()):
            if file.name.startswith(".") or file.is_dir():
                continue
            try:
                mode = file.stat().st_mode
            except OSError as e:
                mode = None
                why = f"cannot read ({e.strerror})"
            if mode is not None and not stat.S_ISREG(mode):
                why = f"not a regular file ({_file_kind(mode)}); special files are never read"
            if mode is None or not stat.S_ISREG(mode):
                person.skipped.append((str(file), why))
                warn(f"{file}: skipped: {why}")
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
    if not any(p.auditable for p in people):
        first = next((f"{Path(f).name}: {why}" for p in people for f, why in p.skipped), "no photo files")
        raise InputError(f"{root}: none of the {len(people)} people has a usable photo, nobody can be audited "
                         f"(e.g. {first})")
    return people
