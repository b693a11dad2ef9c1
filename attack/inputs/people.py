"""People folders: DIR/<Full Name>/*.{jpg,png,webp}. Scanning checks every file before anything is encoded.

A file that is not a readable image is listed and skipped with a warning (every photo is decoded in full when
checked, from the same bytes that are hashed; FIFOs and other special files are never read); so are sub-folders
of a person's folder (their photos are not read) and hidden person folders (a name starting with "."); a person
left with no usable image is reported as not auditable, never silently dropped; decompression bombs are refused.
If nobody is auditable, that is an error.
"""

from __future__ import annotations

import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from idia.attack.inputs.photos import _file_kind, check_photo
from idia.errors import InputError
from idia.names import name_key, normalize_name, spell_out_difference


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
            if entry.is_dir():
                warn(f"{entry}: skipped: a hidden folder (its name starts with '.'); rename it to audit that person")
            continue
        if not entry.is_dir():
            warn(f"{entry}: skipped: a file directly in the people folder (photos go in a folder per person)")
            continue
        name = normalize_name(entry.name)
        if not name:
            warn(f"{entry}: skipped: folder name is not a name")
            continue
        if name_key(name) in seen:
            first = seen[name_key(name)]
            raise InputError(f"{entry}: the same person as {first} (the folder names differ only in case, spacing, "
                             f"Unicode form or invisible characters: {spell_out_difference(entry.name, first.name)})")
        seen[name_key(name)] = entry
        person = _scan_person(Person(name=name, folder=entry), max_images, warn)
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


def _scan_person(person: Person, max_images: int | None, warn) -> Person:
    """The person's photos, each read once: hashed and decoded from the same bytes. Every file passed over is
    listed in `person.skipped` with why (hidden files such as .DS_Store excepted)."""
    for file in sorted(person.folder.iterdir()):
        if file.name.startswith(".") and not file.is_dir():
            continue
        try:
            mode = file.stat().st_mode
            why = None
        except OSError as e:
            mode, why = None, f"cannot read ({e.strerror})"
        if mode is not None and stat.S_ISDIR(mode):
            why = "a sub-folder: only photos directly in the person's folder are read"
        elif mode is not None and not stat.S_ISREG(mode):
            why = f"not a regular file ({_file_kind(mode)}); special files are never read"
        if why is None and max_images is not None and len(person.photos) >= max_images:
            break
        digest = None
        if why is None:
            digest, why = check_photo(file)
        if why:
            person.skipped.append((str(file), why))
            warn(f"{file}: skipped: {why}")
            continue
        person.photos.append(Photo(file, digest))
    return person


def folder_names(root: str | Path) -> list[str]:
    """The names the person folders under `root` give, without reading a photo: what an audit can check a
    requested name against before anything runs."""
    root = Path(root)
    if not root.is_dir():
        return []
    return [normalize_name(e.name) for e in sorted(root.iterdir()) if e.is_dir() and not e.name.startswith(".")]
