"""The synthetic identity world: made-up people, who of them the model saw, and their photos.

Everything follows from one seed. Each person gets a stream of random numbers of their own (derived from the
seed and their index), and photos for training and photos for auditing come from separate streams, so the audit
never shows the model a picture it was trained on and adding people never changes anyone else's pictures.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from idia.attack.inputs import names as name_lists
from idia.io import atomic_write_text
from idia.world.faces import Appearance, render_face, sample_appearance
from idia.world.shapes import CAPTIONS as SHAPE_CAPTIONS
from idia.world.shapes import class_label, render_shape, shape_classes

# How a member's name appears beside their photos in the training data. Deliberately not the attack's 21
# prompts: web captions are whatever people wrote.
TRAIN_CAPTIONS = (
    "a photo of {name}",
    "{name}",
    "portrait of {name}",
    "{name} smiling at the camera",
    "a picture of {name} outdoors",
    "{name} at the conference",
    "close-up of {name}",
    "{name} in the news today",
)

ROLE_MEMBER, ROLE_NONMEMBER, ROLE_REFERENCE = "member", "nonmember", "reference"
STREAM_TRAIN, STREAM_AUDIT, STREAM_SHAPES_TRAIN, STREAM_SHAPES_TEST = 0, 1, 2, 3


@dataclass(frozen=True)
class WorldSpec:
    """The parameters of a world. `images_per_member` is cycled over the members, so members occur in the
    training data different numbers of times (the paper: identification grows with occurrences)."""

    seed: int = 0
    n_members: int = 100
    n_nonmembers: int = 100
    n_reference: int = 100
    images_per_member: tuple[int, ...] = (5, 10, 25, 50)
    shared_name_fraction: float = 0.1
    n_shape_images: int = 3000
    image_size: int = 64

    def to_dict(self) -> dict:
        d = asdict(self)
        d["images_per_member"] = list(self.images_per_member)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "WorldSpec":
        d = dict(d)
        d["images_per_member"] = tuple(d["images_per_member"])
        return cls(**d)


@dataclass(frozen=True)
class Identity:
    index: int
    name: str
    role: str
    n_train_images: int
    appearance: Appearance
    shares_name_with: str | None = None  # a deliberate confusable: another person with the same first or last name

    def to_dict(self) -> dict:
        d = asdict(self)
        d["appearance"] = self.appearance.to_dict()
        return d


@dataclass
class World:
    spec: WorldSpec
    identities: list[Identity] = field(default_factory=list)

    def by_role(self, role: str) -> list[Identity]:
        return [p for p in self.identities if p.role == role]

    @property
    def members(self) -> list[Identity]:
        return self.by_role(ROLE_MEMBER)

    def labels(self, roles=(ROLE_MEMBER, ROLE_NONMEMBER)) -> dict[str, bool]:
        return {p.name: p.role == ROLE_MEMBER for p in self.identities if p.role in roles}

    def rng(self, *keys: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.spec.seed, *keys]))

    def photo(self, person: Identity, stream: int, k: int) -> "Image.Image":  # noqa: F821
        """The k-th photo of a person from one stream (training or audit); the same every time."""
        return render_face(person.appearance, self.rng(stream, person.index, k), self.spec.image_size)

    def shape_image(self, stream: int, k: int):
        """The k-th shape picture of a stream, with its (colour, shape) class."""
        classes = shape_classes()
        rng = self.rng(stream, 10**6, k)
        colour, shape = classes[int(rng.integers(len(classes)))]
        return render_shape(colour, shape, rng, self.spec.image_size), (colour, shape)

    def to_dict(self) -> dict:
        return {"spec": self.spec.to_dict(), "identities": [p.to_dict() for p in self.identities]}


def _make_names(n: int, rng: np.random.Generator, shared_fraction: float) -> list[tuple[str, str | None]]:
    """Pseudo-unique names, each first and last name used once while the lists last; a `shared_fraction`
    minority borrows a first or last name from someone else (the deliberate confusable pairs)."""
    firsts = list(rng.permutation(name_lists.first_names()))
    lasts = list(rng.permutation(name_lists.last_names()))
    out: list[tuple[str, str | None]] = []
    taken: set[str] = set()
    for i in range(n):
        first, last = str(firsts[i % len(firsts)]), str(lasts[(i + i // len(lasts)) % len(lasts)])
        shared_with = None
        if i > 0 and rng.random() < shared_fraction:
            other_first, other_last = out[int(rng.integers(i))][0].split(" ")
            if rng.random() < 0.5:
                first = other_first
            else:
                last = other_last
            shared_with = f"{other_first} {other_last}"
        name = f"{first} {last}"
        while name in taken:  # only when the lists run out: pick another surname
            last = str(lasts[int(rng.integers(len(lasts)))])
            name = f"{first} {last}"
        taken.add(name)
        out.append((name, shared_with))
    return out


def make_world(spec: WorldSpec = WorldSpec()) -> World:
    """The people of a world, their roles, how often each member occurs in training, their appearance."""
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 999_999]))
    n = spec.n_members + spec.n_nonmembers + spec.n_reference
    names = _make_names(n, rng, spec.shared_name_fraction)
    roles = [ROLE_MEMBER] * spec.n_members + [ROLE_NONMEMBER] * spec.n_nonmembers + [ROLE_REFERENCE] * spec.n_reference
    roles = [roles[i] for i in rng.permutation(n)]
    world = World(spec=spec)
    member_rank = 0
    for i, ((name, shared), role) in enumerate(zip(names, roles)):
        count = 0
        if role == ROLE_MEMBER:
            count = spec.images_per_member[member_rank % len(spec.images_per_member)]
            member_rank += 1
        appearance = sample_appearance(np.random.default_rng(np.random.SeedSequence([spec.seed, 777_777, i])))
        world.identities.append(Identity(i, name, role, count, appearance, shared))
    return world


def training_pairs(world: World):
    """What the model is trained on: each member's training photos with their name, and shape pictures with
    their description. Yields (image, list of caption variants)."""
    for person in world.members:
        captions = [t.format(name=person.name) for t in TRAIN_CAPTIONS]
        for k in range(person.n_train_images):
            yield world.photo(person, STREAM_TRAIN, k), captions
    for k in range(world.spec.n_shape_images):
        image, (colour, shape) = world.shape_image(STREAM_SHAPES_TRAIN, k)
        yield image, [t.format(colour=colour, shape=shape) for t in SHAPE_CAPTIONS]


def write_training_captions(world: World, out: str | Path, shard_size: int = 1000, images: bool = True,
                            members: int | None = None, shapes: int | None = None) -> dict:
    """The training set as webdataset tar shards (out/train-NNNNN.tar): per training image, KEY.txt with one of
    its captions (the k-th photo of a member gets TRAIN_CAPTIONS[(index + k) % 8], so every variant occurs) and
    KEY.png (unless `images` is False). `members` keeps the first N members, `shapes` the first N shape
    pictures (default: all of both). Returns {member's name: captions naming them}, the counts a scan must find.

    The trainer draws a caption variant per epoch instead; the people, their photos and how often each occurs
    are the same."""
    import io
    import tarfile
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    chosen = world.members[:members] if members is not None else world.members
    n_shapes = world.spec.n_shape_images if shapes is None else shapes
    samples = [(p, k) for p in chosen for k in range(p.n_train_images)] + [(None, k) for k in range(n_shapes)]
    counts = {p.name: p.n_train_images for p in chosen}
    for shard in range(0, len(samples), shard_size):
        with tarfile.open(out / f"train-{shard // shard_size:05d}.tar", "w", format=tarfile.USTAR_FORMAT) as tar:
            for i, (person, k) in enumerate(samples[shard:shard + shard_size], start=shard):
                if person is not None:
                    caption = TRAIN_CAPTIONS[(person.index + k) % len(TRAIN_CAPTIONS)].format(name=person.name)
                    image = world.photo(person, STREAM_TRAIN, k) if images else None
                else:
                    image, (colour, shape) = world.shape_image(STREAM_SHAPES_TRAIN, k)
                    caption = SHAPE_CAPTIONS[k % len(SHAPE_CAPTIONS)].format(colour=colour, shape=shape)
                members_data = [(f"{i:07d}.txt", caption.encode("utf-8"))]
                if images and image is not None:
                    buf = io.BytesIO()
                    image.save(buf, format="PNG", optimize=False)
                    members_data.append((f"{i:07d}.png", buf.getvalue()))
                for name, data in members_data:
                    info = tarfile.TarInfo(name)
                    info.size, info.mtime, info.mode = len(data), 0, 0o644
                    tar.addfile(info, io.BytesIO(data))
    return counts


def write_photos(world: World, out: str | Path, images_per_person: int = 10, shapes_per_class: int = 10) -> dict:
    """Render fresh, never-trained photos for an audit:

    people/<Full Name>/*.png     members and non-members to audit
    reference/<Full Name>/*.png  further non-members, for calibrating the attack
    shapes/<colour shape>/*.png  a labelled zero-shot task, one folder per class (utility of a defense)
    labels.json                  ground truth for people/: name -> member true/false
    """
    out = Path(out)
    folders = {p.index: out / ("reference" if p.role == ROLE_REFERENCE else "people") / p.name
               for p in world.identities}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)

    def render(task: tuple[Identity, int]) -> None:  # each photo from its own seed: any order gives the same files
        person, k = task
        world.photo(person, STREAM_AUDIT, k).save(folders[person.index] / f"{k:03d}.png", optimize=False)

    # Pillow's resampling releases the GIL, so threads render on every core (3,000 photos: 13 s on one core)
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        list(pool.map(render, [(p, k) for p in world.identities for k in range(images_per_person)], chunksize=64))
    counts: dict[tuple[str, str], int] = {}
    k = 0
    while min(counts.values(), default=0) < shapes_per_class or len(counts) < len(shape_classes()):
        image, cls = world.shape_image(STREAM_SHAPES_TEST, k)
        k += 1
        if counts.get(cls, 0) >= shapes_per_class:
            continue
        folder = out / "shapes" / class_label(*cls)
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / f"{counts.get(cls, 0):03d}.png", optimize=False)
        counts[cls] = counts.get(cls, 0) + 1
    labels = world.labels()
    atomic_write_text(out / "labels.json", json.dumps(labels, indent=2, sort_keys=True) + "\n")
    return labels
