"""The scan stage: people folders, reference people, labels and prompts read and checked before any model runs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from idia.attack.inputs import names, prompts
from idia.attack.inputs.people import Person, scan_people
from idia.errors import InputError
from idia.io import read_text_file
from idia.names import name_key, normalize_name


@dataclass
class Scan:
    """Who is asked about, with which photos, in which prompts; `everyone` is the evidence order."""

    audit: list[Person]  # every audited folder, auditable or not
    reference: list[Person]  # every reference folder
    templates: list[str]
    labels: dict[str, bool]
    aliases: dict[str, list[str]] = field(default_factory=dict)
    attributes: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)  # person: (gender, origin)
    occurrences: dict[str, int] | None = None  # occurrence_key(name) -> captions naming them (--occurrences)

    @property
    def everyone(self) -> list[Person]:
        """Audited people with photos, then reference people with photos."""
        return [p for p in self.audit if p.auditable] + [p for p in self.reference if p.auditable]

    @property
    def n_audited(self) -> int:
        return sum(p.auditable for p in self.audit)

    @property
    def is_reference(self) -> np.ndarray:
        return np.arange(len(self.everyone)) >= self.n_audited

    def photo_table(self) -> tuple[list[Path], list[str], np.ndarray]:
        """(paths, SHA-256s, owner): every photo of `everyone`, grouped by person, in order."""
        people = self.everyone
        paths = [ph.path for p in people for ph in p.photos]
        hashes = [ph.sha256 for p in people for ph in p.photos]
        owner = np.repeat(np.arange(len(people), dtype=np.int64), [len(p.photos) for p in people])
        return paths, hashes, owner


def read_labels(path: Path) -> dict[str, bool]:
    try:
        data = json.loads(read_text_file(path, "JSON labels file"))
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not a JSON labels file ({e})") from None
    if not isinstance(data, dict) or not all(isinstance(v, bool) for v in data.values()):
        raise InputError(f"{path}: labels must be a JSON object mapping each name to true (member) or false")
    return {normalize_name(k): v for k, v in data.items()}


def shared_photos(audit: list[Person], reference: list[Person], reference_root, warn) -> None:
    """The same photo bytes under two people: a warning among the audited (one face cannot be two people's, so
    at least one verdict rests on someone else's photo); refused between audited and reference people, since a
    reference person is a known non-member and a shared photo biases the calibration towards the audited one."""
    owner: dict[str, tuple[Person, Path]] = {}
    is_reference = {id(p) for p in reference}
    for person in audit + reference:
        for ph in person.photos:
            first = owner.setdefault(ph.sha256, (person, ph.path))
            if first[0] is person:
                continue
            if (id(first[0]) in is_reference) != (id(person) in is_reference):
                raise InputError(f"{ph.path}: the same photo (SHA-256 {ph.sha256[:12]}…) as {first[1]}, of an audited "
                                 f"person, is among the reference people ({reference_root}); a reference photo of an "
                                 "audited person biases the calibration: remove one of them")
            warn(f"{ph.path}: the same photo (SHA-256 {ph.sha256[:12]}…) as {first[1]}, of {first[0].name!r}: one of "
                 "these people's verdicts rests on another person's photo")


def scan(settings, warn) -> Scan:
    """Read and check every input the settings name. Raises InputError on anything an audit cannot go on with."""
    templates = prompts.read_prompts(settings.prompts) if settings.prompts else list(prompts.PAPER_TEMPLATES)
    audit = scan_people(settings.people, settings.max_images, warn=warn)
    reference = scan_people(settings.reference, settings.max_images, warn=warn) if settings.reference else []
    clash = {name_key(p.name) for p in audit} & {name_key(p.name) for p in reference}
    if clash:
        raise InputError(f"{settings.reference}: {sorted(clash)[0]!r} is both audited and a reference non-member")
    shared_photos(audit, reference, settings.reference, warn)
    labels = read_labels(settings.labels) if settings.labels else {}
    aliases = names.read_aliases(settings.aliases) if settings.aliases else {}
    attributes = (names.read_attributes(settings.attributes, [p.name for p in audit + reference])
                  if settings.attributes else {})
    occurrences = None
    if settings.occurrences:
        from idia.attack.inputs.occurrences import read_occurrences
        occurrences = read_occurrences(settings.occurrences)
    return Scan(audit=audit, reference=reference, templates=templates, labels=labels, aliases=aliases,
                attributes=attributes, occurrences=occurrences)
