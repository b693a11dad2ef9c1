"""The model adapter: a loaded CLIP and what an audit records about it, in open_clip's terms whatever format it
came from (every format is loaded into open_clip's modules, so this is the one place that knows their naming)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from idia.io import canonical_json, sha256_text


@dataclass
class LoadedModel:
    """A CLIP ready to encode, and everything an audit must record about where it came from."""

    model: torch.nn.Module
    preprocess: Callable
    tokenizer: Callable
    source: str  # what the user asked for
    checkpoint: str | None
    checkpoint_sha256: str | None
    model_cfg: dict
    preprocess_cfg: dict
    # What image embeddings depend on; by default the whole model's identity. A defense that changes only the text
    # tower (name redaction) passes its source's, so the same photos need not be encoded again.
    image_identity: str | None = None
    init_sha256: str | None = None  # a randomly initialised model's weights (it has no checkpoint to name it)
    source_format: str = "open_clip"  # the format it was read from (attack.formats), so it can be written back
    config_sha256: str = field(init=False)

    def __post_init__(self):
        self.config_sha256 = sha256_text(canonical_json({"model_cfg": self.model_cfg,
                                                         "preprocess_cfg": self.preprocess_cfg}))
        if self.image_identity is None:
            self.image_identity = self.identity

    @property
    def context_length(self) -> int:
        return int(self.model_cfg["text_cfg"].get("context_length", 77))

    def tower_parameter_names(self, tower: str, model: torch.nn.Module | None = None) -> list[str]:
        """The parameters of one tower ("image" or "text") of this model (or of a copy of it, `model`): what the
        defenses fine-tune. The one place that knows open_clip's naming (every format is loaded into it)."""
        return tower_parameter_names(model if model is not None else self.model, tower)

    @property
    def embed_dim(self) -> int:
        return int(self.model_cfg["embed_dim"])

    @property
    def logit_scale(self) -> float:
        """The temperature the model was trained with (exp of its learned log scale)."""
        return float(self.model.logit_scale.exp().item())

    @property
    def identity(self) -> str:
        """What a cache key must depend on: the weights' bytes (a checkpoint's, or a random initialisation's)."""
        return self.checkpoint_sha256 or f"random-init:{self.init_sha256 or self.config_sha256}"

    def describe(self) -> dict:
        return {"source": self.source, "source_format": self.source_format,
                "checkpoint": self.checkpoint, "checkpoint_sha256": self.checkpoint_sha256,
                "config_sha256": self.config_sha256, "model_cfg": self.model_cfg,
                "preprocess_cfg": self.preprocess_cfg}


def tower_parameter_names(model: torch.nn.Module, tower: str) -> list[str]:
    """open_clip's image tower is `visual.*`; the text tower is everything else but the logit scale and bias."""
    if tower not in ("image", "text"):
        raise ValueError(f"tower must be 'image' or 'text', got {tower!r}")
    if tower == "image":
        return [n for n, _ in model.named_parameters() if n.startswith("visual.")]
    return [n for n, _ in model.named_parameters()
            if not n.startswith("visual.") and n not in ("logit_scale", "logit_bias")]
