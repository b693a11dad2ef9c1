"""Engines: who decodes and encodes the photos the image cache lacks.

The Encoder owns the caches, the log and the order of the results; an engine only turns a list of photo paths
into embeddings and hands them back batch by batch, as `(positions, embeddings)` pairs in any order, so that the
Encoder can write cache shards as they arrive (an interrupted run keeps what was encoded). One module per engine:
`local` (a torch DataLoader on this machine) and `ray` (Ray Data actors, one model each, on a cluster). A module
registers its class with `@register`; adding an engine is adding a file here.

Engines must give the same embeddings as `local` up to float rounding: the decide and record stages are shared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, Protocol, Sequence

import numpy as np
import torch

from idia.registry import Registry

DEFAULT_ENGINE = "local"


class EncodingJob(Protocol):
    """What an engine reads from the Encoder that hands it photos (the Encoder is one): the model, where and in
    what arithmetic it runs, and how photos are batched and decoded."""

    loaded: object  # idia.attack.model.adapter.LoadedModel
    device: str  # as configured (auto, cpu, cuda:N, ...)
    torch_device: torch.device  # resolved, the model moved there
    precision: str
    batch_size: int
    workers: int
    draft_to: int | None
    progress: bool


class Engine(Protocol):
    name: str

    def device_type(self, job: EncodingJob) -> str:
        """Where the image tower runs ('cpu', 'cuda'): part of the image cache's key."""

    def encode(self, job: EncodingJob, paths: Sequence[Path],
               sha256s: Sequence[str | None] | None = None) -> Iterator[tuple[list[int], np.ndarray]]:
        """L2-normalised float32 embeddings of `paths`, as (positions in `paths`, rows) batches in any order.
        Each photo is read once, and decoded only if its bytes hash to `sha256s[i]` (when given: the hash the scan
        recorded and the image cache keys it by), with `attack.inputs.photos.load_checked`. A photo that cannot be
        decoded, or whose bytes changed, is an InputError naming it."""

    def describe(self) -> dict: ...


ENGINES: Registry[Callable[..., Engine]] = Registry("--engine", package=__name__)
register = ENGINES.register


def engine_names() -> tuple[str, ...]:
    return ENGINES.names()


def make_engine(name: str, **params) -> Engine:
    return ENGINES.get(name)(**params)
