"""Engines: who decodes and encodes the photos the image cache lacks.

The Encoder owns the caches, the log and the order of the results; an engine only turns a list of photo paths
into embeddings and hands them back batch by batch, as `(positions, embeddings)` pairs in any order, so that the
Encoder can write cache shards as they arrive (an interrupted run keeps what was encoded). One module per engine:
`local` (a torch DataLoader on this machine) and `ray` (Ray Data actors, one model each, on a cluster). A module
registers its class with `@register`; adding an engine is adding a file here.

Engines must give the same embeddings as `local` up to float rounding: the decide and record stages are shared.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Protocol, Sequence

import numpy as np

from idia.errors import InputError

if TYPE_CHECKING:
    from idia.attack.encode.encoder import Encoder

DEFAULT_ENGINE = "local"
_REGISTRY: dict[str, type] = {}


class Engine(Protocol):
    name: str

    def device_type(self, encoder: "Encoder") -> str:
        """Where the image tower runs ('cpu', 'cuda'): part of the image cache's key."""

    def encode(self, encoder: "Encoder", paths: Sequence[Path]) -> Iterator[tuple[list[int], np.ndarray]]:
        """L2-normalised float32 embeddings of `paths`, as (positions in `paths`, rows) batches in any order.
        A photo that cannot be decoded is an InputError naming it."""

    def describe(self) -> dict: ...


def register(cls: type) -> type:
    _REGISTRY[cls.name] = cls
    return cls


def engine_names() -> tuple[str, ...]:
    """The engines shipped in this package (module names), without importing them: `ray` stays unimported
    until it is chosen."""
    return tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")))


def make_engine(name: str, **params) -> Engine:
    if name not in _REGISTRY:
        if name not in engine_names():
            raise InputError(f"--engine must be one of {', '.join(engine_names())}, got {name!r}")
        importlib.import_module(f"{__name__}.{name}")
    return _REGISTRY[name](**params)
