"""Model formats behind one registry: each says whether it recognises a path and resolves it to open_clip terms.

A format returns a `ResolvedModel`: the open_clip ``model_cfg`` and ``preprocess_cfg``, a lazily read state dict in
open_clip's naming, the tokenizer to use and the files to hash. `idia.attack.model.load.load_clip` checks the config against
the weights' shapes on the meta device before it allocates anything, then builds and loads. Adding a format means
adding one module that calls `register`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import torch

from idia.registry import Registry


@dataclass
class ResolvedModel:
    """Everything `load_clip` needs, worked out without reading the weights' bytes."""

    model_cfg: dict
    preprocess_cfg: dict
    source: str  # what the user asked for
    source_format: str  # the registry name of the format that recognised it
    checkpoint: Path | None  # the weights file (named in errors, hashed as the model's identity)
    read_state: Callable[[], dict[str, torch.Tensor]] | None = None  # open_clip naming; None: random init
    read_shapes: Callable[[], dict[str, tuple[int, ...]]] | None = None  # cheap: headers or pickle records
    make_tokenizer: Callable[[], Callable] | None = None  # None: the one open_clip's config implies
    files: list[Path] = field(default_factory=list)  # everything the model's behaviour depends on


class Format(Protocol):
    name: str
    priority: int  # lower first

    def recognises(self, model: str, checkpoint: str | None) -> bool:
        """Cheap sniffing only: files present, zip entries, a config's type."""

    def resolve(self, model: str, checkpoint: str | None, allow_random: bool) -> ResolvedModel:
        """Work out the model; raise `InputError` with one line for anything that cannot be mapped."""


# The first format that recognises a model string wins: by priority, the open_clip forms (which take every
# string) last. Each module of this package registers its format.
FORMATS: Registry[Format] = Registry("model format", package=__name__, order=lambda f: (f.priority, f.name))
register = FORMATS.register


def formats() -> list[Format]:
    return FORMATS.kinds()


def detect(model: str, checkpoint: str | None = None) -> Format:
    for fmt in formats():
        if fmt.recognises(model, checkpoint):
            return fmt
    raise AssertionError("the open_clip format accepts every model string")  # pragma: no cover
