"""What a verification attacks with beyond the 21 templates on every photo: photos the defense never saw,
phrasings it never trained on, and other forms of the names.

* `split_photos`: each person's photos, split by a seeded shuffle into an unlearn half (the defense may train
  on it) and a verify half (the attacks use only it). The split of a person depends only on the seed and the
  person's photo hashes, so it is the same in every run and independent of who else is audited.
* `people_view`: a folder of links to a subset of the photos, optionally under other names, so the attack runs
  unchanged on it (the attack reads folders; the record names the original files).
* `heldout_templates`: the bundled phrasings (defense/data/heldout_templates.txt) that neither the attack's 21
  templates nor the redaction's training frames contain.
* `name_variant`: first name only, surname only, initials with surname; `variant_view` builds the people folders,
  labels and candidate list of an attack with every name so transformed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np

from idia.attack.inputs import names as name_lists
from idia.attack.inputs.people import Person, Photo
from idia.errors import InputError
from idia.io import atomic_write_json, atomic_write_text
from idia.names import normalize_name

HELDOUT_FILE = "heldout_templates.txt"
VARIANTS = ("first", "last", "initials")


def heldout_templates_path() -> Path:
    return Path(str(resources.files("idia.defense").joinpath("data", HELDOUT_FILE)))


# --- unseen photos ---------------------------------------------------------------------------------------------

@dataclass
class PhotoSplit:
    """Per person: the photos a defense may train on and the photos the attacks use."""

    unlearn: dict[str, list[Photo]] = field(default_factory=dict)
    verify: dict[str, list[Photo]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        side = lambda d: {n: [{"file": str(p.path), "sha256": p.sha256} for p in ps] for n, ps in d.items()}  # noqa: E731
        return {"rule": "each person's photos shuffled by a seed and their hashes; the first half (rounded down) "
                        "may be trained on, the rest are attacked",
                "unlearn": side(self.unlearn), "verify": side(self.verify)}


def split_person(photos: Sequence[Photo], seed: int) -> tuple[list[Photo], list[Photo]]:
    """(unlearn, verify): a seeded shuffle of the photos (keyed by their hashes, so the order files are listed in
    does not matter); the unlearn half is the smaller one when the count is odd."""
    ordered = sorted(photos, key=lambda p: p.sha256)
    digest = hashlib.sha256(f"{seed}:".encode() + "".join(p.sha256 for p in ordered).encode()).digest()
    order = np.random.default_rng(int.from_bytes(digest[:8], "little")).permutation(len(ordered))
    half = len(ordered) // 2
    return [ordered[i] for i in order[:half]], [ordered[i] for i in order[half:]]


def split_photos(people: Sequence[Person], seed: int, need: Sequence[str] = ()) -> PhotoSplit:
    """Split everyone's photos; a name in `need` (a person to unlearn) with fewer than two photos is an error."""
    split = PhotoSplit()
    by_name = {p.name.casefold(): p for p in people if p.auditable}
    for name in need:
        person = by_name.get(name.casefold())
        if person is not None and len(person.photos) < 2:
            raise InputError(f"{person.folder}: {person.name!r} has {len(person.photos)} photo(s); image redaction "
                             "needs at least 2 (half to unlearn, half to verify on)")
    for person in people:
        if person.auditable:
            split.unlearn[person.name], split.verify[person.name] = split_person(person.photos, seed)
    return split


def photo_sets(split: PhotoSplit, names: Sequence[str]) -> tuple[dict[str, list[Path]], dict[str, list[Path]]]:
    """(the redacted people's unlearn photos by name, everyone else's unlearn photos by name)."""
    gone = {n.casefold() for n in names}
    unlearn = {n: [ph.path for ph in ps] for n, ps in split.unlearn.items() if n.casefold() in gone}
    retain = {n: [ph.path for ph in ps] for n, ps in split.unlearn.items() if n.casefold() not in gone and ps}
    return unlearn, retain


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.symlink(Path(src).resolve(), dst)
    except OSError:  # a file system without links
        shutil.copyfile(src, dst)


def people_view(root: Path, photos: dict[str, Sequence[Photo]], rename: dict[str, str] | None = None) -> Path:
    """A people folder at `root`: one sub-folder per person (renamed by `rename`), linking their given photos."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    rename = rename or {}
    for name, ps in photos.items():
        folder = root / rename.get(name, name)
        for i, ph in enumerate(ps):
            _link(ph.path, folder / f"{i:04d}{Path(ph.path).suffix.lower()}")
    return root


# --- name variants --------------------------------------------------------------------------------------------

def name_variant(name: str, variant: str) -> str:
    """'Kojo Huang' -> 'Kojo' (first), 'Huang' (last), 'K. Huang' (initials: every given name's initial)."""
    words = normalize_name(name).split(" ")
    if variant == "first":
        return words[0]
    if variant == "last":
        return words[-1]
    if variant == "initials":
        return " ".join([f"{w[0]}." for w in words[:-1]] + [words[-1]]) if len(words) > 1 else words[0]
    raise InputError(f"name variant must be one of {', '.join(VARIANTS)}, got {variant!r}")


def parse_variants(value) -> tuple[str, ...]:
    """Name variants from 'first,last' or a sequence; each one of VARIANTS, in VARIANTS' order, once."""
    if value is None:
        return ()
    given = [v.strip() for v in (value.split(",") if isinstance(value, str) else value) if v and v.strip()]
    bad = [v for v in given if v not in VARIANTS]
    if bad:
        raise InputError(f"name variant must be one of {', '.join(VARIANTS)}, got {bad[0]!r}")
    return tuple(v for v in VARIANTS if v in given)


def name_forms(names: Sequence[str], variants: Sequence[str]) -> list[str]:
    """The other forms the names are known by (each variant of each name), without the full names themselves,
    in order and once each (case-insensitively)."""
    full = {normalize_name(n).casefold() for n in names}
    forms = [name_variant(n, v) for n in names for v in variants]
    return [f for f in dict.fromkeys(forms) if f.casefold() not in full]


def variant_distractors(variant: str, n: int, exclude: set[str], seed: int) -> list[str]:
    """Made-up names of the same form, from the bundled name lists."""
    rng = np.random.default_rng(seed)
    firsts, lasts = name_lists.first_names(), name_lists.last_names()
    if variant == "first":
        pool = list(firsts)
    elif variant == "last":
        pool = list(lasts)
    else:
        pool = [f"{f[0]}. {last}" for f in firsts[:26 * 4] for last in lasts]
    excl = {e.casefold() for e in exclude}
    out = list(dict.fromkeys(x for x in (pool[i] for i in rng.permutation(len(pool))) if x.casefold() not in excl))
    return out[:n]


@dataclass
class VariantView:
    variant: str
    people: Path
    reference: Path | None
    labels: Path | None
    candidates: Path
    dropped: list[str]  # people left out because another person's name has the same variant

    def to_dict(self) -> dict:
        return {"variant": self.variant, "dropped_as_ambiguous": self.dropped}


def variant_view(root: Path, variant: str, audit: dict[str, Sequence[Photo]], reference: dict[str, Sequence[Photo]],
                 labels: dict[str, bool], n_candidates: int, seed: int, prefer: Sequence[str] = ()) -> VariantView:
    """People (and reference) folders renamed to the variant, with labels and a candidate list of the same form.

    Two people whose variants coincide ('Kojo Huang', 'Kojo Lau' -> 'Kojo') cannot be told apart by it: only one
    is kept, a name in `prefer` (a redacted person) first, else the first by name; the others are listed."""
    everyone = [(n, "audit") for n in audit] + [(n, "reference") for n in reference]
    first = {p.casefold() for p in prefer}
    everyone.sort(key=lambda x: (x[0].casefold() not in first, x[1] != "audit", x[0]))
    kept: dict[str, tuple[str, str]] = {}
    dropped = []
    for name, side in everyone:
        v = name_variant(name, variant)
        if v.casefold() in kept:
            dropped.append(name)
        else:
            kept[v.casefold()] = (name, side)
    rename = {name: name_variant(name, variant) for name, _ in kept.values()}
    people = people_view(root / "people", {n: audit[n] for n, s in kept.values() if s == "audit"}, rename)
    ref = None
    if any(s == "reference" for _, s in kept.values()):
        ref = people_view(root / "reference", {n: reference[n] for n, s in kept.values() if s == "reference"}, rename)
    label_path = None
    if labels:
        label_path = atomic_write_json(root / "labels.json", {rename[n]: labels[n] for n in rename if n in labels})
    true = [rename[n] for n, _ in kept.values()]
    cands = true + variant_distractors(variant, max(0, n_candidates - len(true)), set(true), seed)
    cand_path = atomic_write_text(root / "candidates.txt", "\n".join(cands) + "\n")
    return VariantView(variant, people, ref, label_path, cand_path, sorted(dropped))


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))
