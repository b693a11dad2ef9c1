"""The encode stage: one object that owns the model's device, precision, batch size, photo-decoding workers and
the two on-disk caches, so no photo and no prompt is encoded twice, within a run or across runs.

* Text: prompt embeddings keyed by (weights, config, templates, names, precision, device kind, library versions),
  one entry per key, with a SHA-256 of its bytes recorded when written and checked when read. A damaged or
  tampered entry is recomputed with a warning, never used.
* Images: embeddings keyed by (image tower, preprocessing, precision, device kind, library versions) and the
  photo's SHA-256, in verified shards. A redacted model shares its source's image tower and so its image cache,
  as do the verification's before/after attacks, a sweep's rows and the utility task.
* Photos are decoded and preprocessed by worker processes while the model encodes the previous batch; memory
  holds the embeddings, never all the photos.
* Which photos the cache lacks is decided here; who encodes them is an engine (attack.engines: local, ray), whose
  batches may come back in any order and are written into shards as they arrive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from idia.attack.encode.caches import ImageCache, TextCache, _versions, default_cache_dir
from idia.attack.encode.text import can_trim, encode_text_trimmed, tokenize_prompts
from idia.attack.model.adapter import LoadedModel
from idia.attack.model.device import autocast, resolve_device
from idia.errors import InputError
from idia.io import canonical_json, sha256_text

SHARD_EVERY = 4096  # photos encoded between image-cache shards: an interrupted run loses at most this many


def check_finite(emb: np.ndarray, loaded: LoadedModel, what: str) -> np.ndarray:
    """Embeddings a model gave, refused when any is NaN or infinite (NaN or inf in its weights): checked before
    anything is cached or decided, so no such embedding is ever stored or counted."""
    if not np.isfinite(emb).all():
        raise InputError(f"{loaded.checkpoint or loaded.source}: the model gives NaN or infinite embeddings for "
                         f"{what} (its weights hold NaN or inf values); nothing was cached or decided")
    return emb


@dataclass
class EncodingLog:
    """What came from where, for results.json: a reader can tell cached embeddings from fresh ones."""

    text_blocks: list[dict] = field(default_factory=list)
    images_encoded: int = 0
    images_from_cache: int = 0
    images_failed: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"text_blocks": self.text_blocks, "images_encoded": self.images_encoded,
                "images_from_cache": self.images_from_cache, "images_failed": self.images_failed}


class Encoder:
    """Encodes photos and prompts with one model on one device in one precision, through the caches.

    `__init__` only stores; the model is moved to its device on first use."""

    def __init__(self, loaded: LoadedModel, device: str = "auto", precision: str = "fp32", batch_size: int = 64,
                 workers: int = 0, cache_dir: str | Path | None = None, use_cache: bool = True,
                 progress: bool = True, warn: Callable[[str], None] | None = None, text_batch_size: int = 512,
                 engine: str = "local", ray_address: str | None = None, fast_decode: bool = False):
        self.loaded = loaded
        self.device = device
        self.precision = precision
        self.batch_size = batch_size
        self.workers = workers
        self.cache_dir = cache_dir
        self.use_cache = use_cache
        self.progress = progress
        self.warn = warn
        self.text_batch_size = text_batch_size
        self.engine = engine
        self.ray_address = ray_address
        self.fast_decode = fast_decode

    @classmethod
    def from_settings(cls, loaded: LoadedModel, settings, warn=None) -> "Encoder":
        return cls(loaded, device=settings.device, precision=settings.precision, batch_size=settings.batch_size,
                   workers=settings.n_workers, cache_dir=settings.cache_dir, progress=settings.progress, warn=warn,
                   engine=settings.engine, ray_address=settings.ray_address, fast_decode=settings.fast_decode)

    def with_model(self, loaded: LoadedModel) -> "Encoder":
        """The same runtime settings for another model (a defended copy: it shares the image cache if its image
        tower is the same)."""
        return Encoder(loaded, device=self.device, precision=self.precision, batch_size=self.batch_size,
                       workers=self.workers, cache_dir=self.cache_dir, use_cache=self.use_cache,
                       progress=self.progress, warn=self.warn, text_batch_size=self.text_batch_size,
                       engine=self.engine, ray_address=self.ray_address, fast_decode=self.fast_decode)

    @property
    def draft_to(self) -> int | None:
        """With fast_decode: the fewest pixels a side a JPEG is decoded to (twice the model's input)."""
        if not self.fast_decode:
            return None
        size = self.loaded.preprocess_cfg.get("size") or self.loaded.model_cfg["vision_cfg"].get("image_size", 224)
        return 2 * int(max(size) if isinstance(size, (list, tuple)) else size)

    # --- where and how ---------------------------------------------------------------------------------------

    @property
    def torch_device(self) -> torch.device:
        if not hasattr(self, "device_"):
            self.device_ = resolve_device(self.device)
            autocast(self.device_, self.precision)  # refuses a precision this device cannot run, before any work
            self.loaded.model.to(self.device_)
        return self.device_

    @property
    def image_engine(self):
        """Who encodes the photos the image cache lacks (attack.engines); made on first use."""
        if not hasattr(self, "engine_"):
            from idia.attack.encode.engines import make_engine
            params = {"address": self.ray_address} if self.engine == "ray" else {}
            self.engine_ = make_engine(self.engine, **params)
        return self.engine_

    def _root(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir is not None else default_cache_dir()

    @property
    def log(self) -> EncodingLog:
        if not hasattr(self, "log_"):
            self.log_ = EncodingLog()
        return self.log_

    def describe(self) -> dict:
        dev = self.torch_device
        return {"device": str(dev), "precision": self.precision, "batch_size": self.batch_size,
                "workers": self.workers, "fast_decode": self.draft_to is not None,
                "engine": self.engine_description(), "caches": self.log.to_dict()}

    def engine_description(self) -> dict:
        """The engine as configured, and (once it ran) how: a run that encoded nothing never starts Ray."""
        return self.engine_.describe() if hasattr(self, "engine_") else {"name": self.engine}

    # --- text --------------------------------------------------------------------------------------------------

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str], tokens: torch.Tensor | None = None, trim: bool = True,
                     desc: str = "encode prompts") -> np.ndarray:
        """L2-normalised text embeddings, float32, in input order; not cached (see `prompt_embeddings`)."""
        loaded, device = self.loaded, self.torch_device
        model = loaded.model
        tokens = loaded.tokenizer(list(texts)) if tokens is None else tokens
        lengths = (tokens != 0).sum(dim=1)
        order = torch.argsort(lengths, stable=True) if trim else torch.arange(len(texts))
        out = torch.empty(len(texts), loaded.embed_dim)
        trim = trim and can_trim(model)
        bs = self.text_batch_size
        with autocast(device, self.precision):
            for start in tqdm(range(0, len(texts), bs), desc=desc, disable=not self.progress, unit="batch"):
                idx = order[start:start + bs]
                batch = tokens[idx].to(device)
                feats = encode_text_trimmed(model, batch) if trim else model.encode_text(batch)
                out[idx] = torch.nn.functional.normalize(feats.float(), dim=-1).cpu()
        return check_finite(out.numpy(), loaded, "prompts")

    def prompt_embeddings(self, templates: Sequence[str], names: Sequence[str]) -> np.ndarray:
        """[n_templates, n_names, d] embeddings of every template filled with every name, through the cache."""
        from idia.attack.inputs.prompts import fill
        cache = TextCache(self._root() / "text", warn=self.warn)
        key = cache.key(self.loaded, templates, names, self.precision, self.torch_device.type)
        shape = (len(templates), len(names))
        cached = cache.read(key, shape) if self.use_cache else None
        self.log.text_blocks.append({"n_templates": shape[0], "n_names": shape[1], "key": key,
                                     "from_cache": cached is not None})
        if cached is not None:
            return cached
        flat = self.encode_texts(fill(templates, names), tokens=tokenize_prompts(self.loaded.tokenizer, templates, names))
        emb = flat.reshape(len(templates), len(names), -1)
        if self.use_cache:
            cache.write(key, emb)
        return emb

    # --- images ------------------------------------------------------------------------------------------------

    def image_cache(self) -> ImageCache:
        tower = sha256_text(canonical_json({"tower": self.loaded.image_identity, "config": self.loaded.config_sha256,
                                            "precision": self.precision, **({"draft_to": self.draft_to}
                                                                            if self.fast_decode else {}),
                                            "device": self.image_engine.device_type(self),
                                            **_versions()}))
        if not hasattr(self, "image_cache_") or self.image_cache_.directory.name != tower:
            self.image_cache_ = ImageCache(self._root() / "images" / tower, warn=self.warn)
        return self.image_cache_

    @torch.no_grad()
    def encode_photos(self, paths: Sequence[Path], sha256s: Sequence[str] | None = None,
                      desc: str = "encode photos") -> np.ndarray:
        """L2-normalised image embeddings after the model's own preprocessing, float32, in input order.

        With SHA-256s given (as the scan records them), cached photos are not decoded at all, each distinct
        photo is encoded once, and a photo is decoded only if the bytes read hash to its SHA-256, so an embedding
        is never cached under another photo's hash. A photo that fails to decode here, or whose bytes changed since
        the scan, is an error naming the file."""
        self.torch_device  # refuses a device or precision this machine cannot run before any photo is read
        out = np.empty((len(paths), self.loaded.embed_dim), dtype=np.float32)
        todo: dict[str, list[int]] = {}
        cache = self.image_cache() if (self.use_cache and sha256s is not None) else None
        for i in range(len(paths)):
            key = sha256s[i] if sha256s is not None else f"#{i}"
            hit = cache.get(key) if cache is not None else None
            if hit is not None:
                out[i] = hit
                self.log.images_from_cache += 1
            else:
                todo.setdefault(key, []).append(i)
        if not todo:
            return out
        keys = list(todo)
        first = [todo[k][0] for k in keys]
        pending_keys: list[str] = []
        pending_rows: list[np.ndarray] = []
        bar = tqdm(total=len(first), desc=desc, disable=not self.progress, unit="photo")
        batches = self.image_engine.encode(self, [paths[i] for i in first], keys if sha256s is not None else None)
        try:
            for positions, emb in batches:
                check_finite(emb, self.loaded, "photos")
                for pos, row in zip(positions, emb):
                    out[todo[keys[pos]]] = row
                if cache is not None:
                    pending_keys += [keys[p] for p in positions]
                    pending_rows.append(emb)
                    if len(pending_keys) >= SHARD_EVERY:
                        cache.add(pending_keys, np.concatenate(pending_rows))
                        pending_keys, pending_rows = [], []
                self.log.images_encoded += len(positions)
                bar.update(len(positions))
        finally:
            bar.close()
            getattr(batches, "close", lambda: None)()  # stops an engine's workers when interrupted
            if cache is not None and pending_keys:  # what was encoded before an interruption is kept
                cache.add(pending_keys, np.concatenate(pending_rows))
        return out


def encode_texts(loaded: LoadedModel, texts: Sequence[str], trim: bool = True, progress: bool = True,
                 desc: str = "encode prompts", tokens: torch.Tensor | None = None) -> np.ndarray:
    """L2-normalised text embeddings, float32, in input order, on the device the model is on, uncached.
    (An attack goes through `attack.encoder.Encoder`, which adds device, precision and the cache.)"""
    from idia.attack.encode.encoder import Encoder
    device = str(next(loaded.model.parameters()).device)
    return Encoder(loaded, device=device, use_cache=False, progress=progress).encode_texts(
        texts, tokens=tokens, trim=trim, desc=desc)
