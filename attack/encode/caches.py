"""The embedding caches on disk: prompt embeddings by (model, templates, names, precision, device kind, library
versions), and image embeddings by image tower and photo SHA-256. Every entry carries the SHA-256 of its bytes,
checked when read: a damaged or changed entry is recomputed with a warning, never used."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from idia.attack.model.adapter import LoadedModel
from idia.io import atomic_write_bytes, atomic_write_json, canonical_json, sha256_text

CACHE_VERSION = 2


def default_cache_dir() -> Path:
    return Path(os.environ.get("IDIA_CACHE_DIR", Path.home() / ".cache" / "idia"))


def _versions() -> dict:
    import open_clip
    return {"torch": torch.__version__, "open_clip": open_clip.__version__, "cache": CACHE_VERSION}


def _sha256_bytes(data: bytes) -> str:
    import hashlib
    return hashlib.sha256(data).hexdigest()


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


class TextCache:
    """Prompt embeddings on disk: `<key>.npy` plus `<key>.json` recording the SHA-256 of the .npy bytes."""

    def __init__(self, directory: str | Path | None = None, warn: Callable[[str], None] | None = None):
        self.directory = Path(directory) if directory is not None else default_cache_dir() / "text"
        self.warn = warn

    def key(self, loaded: LoadedModel, templates: Sequence[str], names: Sequence[str], precision: str = "fp32",
            device_type: str = "cpu") -> str:
        return sha256_text(canonical_json({"model": loaded.identity, "config": loaded.config_sha256,
                                           "templates": list(templates), "names": list(names),
                                           "precision": precision, "device": device_type, **_versions()}))

    def read(self, key: str, shape: tuple[int, int]) -> np.ndarray | None:
        data, meta = self.directory / f"{key}.npy", self.directory / f"{key}.json"
        if not data.is_file():
            return None
        try:
            raw = data.read_bytes()
            recorded = json.loads(meta.read_text(encoding="utf-8"))["sha256"]
        except (OSError, ValueError, KeyError, TypeError):
            recorded, raw = None, b""
        if recorded != _sha256_bytes(raw):
            self._warn(f"{data}: text-embedding cache entry does not match its recorded SHA-256 (damaged or "
                       "changed); recomputed")
            return None
        try:
            arr = np.load(io.BytesIO(raw), allow_pickle=False)
        except ValueError:
            return None
        return arr if arr.shape[:2] == shape else None

    def write(self, key: str, emb: np.ndarray) -> None:
        raw = _npy_bytes(emb)
        atomic_write_bytes(self.directory / f"{key}.npy", raw)
        atomic_write_json(self.directory / f"{key}.json", {"sha256": _sha256_bytes(raw), "shape": list(emb.shape)})

    def _warn(self, msg: str) -> None:
        if self.warn:
            self.warn(msg)
        else:
            import warnings
            warnings.warn(msg, stacklevel=3)


class ImageCache:
    """Image embeddings on disk for one image tower: shards of (photo SHA-256s, embeddings), each named by the
    SHA-256 of its contents and verified when read."""

    def __init__(self, directory: Path, warn: Callable[[str], None] | None = None):
        self.directory = Path(directory)
        self.warn = warn
        self._index: dict[str, np.ndarray] | None = None

    def _load(self) -> dict[str, np.ndarray]:
        if self._index is None:
            self._index = {}
            for shard in sorted(self.directory.glob("shard-*.npz")) if self.directory.is_dir() else []:
                try:
                    raw = shard.read_bytes()
                    ok = shard.stem == f"shard-{_sha256_bytes(raw)}"
                    if ok:
                        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
                            keys, emb = z["sha256"], z["emb"]
                except (OSError, ValueError, KeyError):
                    ok = False
                if not ok:
                    if self.warn:
                        self.warn(f"{shard}: image-embedding cache shard does not match its SHA-256; ignored")
                    continue
                self._index.update(zip(keys.tolist(), emb))
        return self._index

    def get(self, sha256: str) -> np.ndarray | None:
        return self._load().get(sha256)

    def add(self, sha256s: Sequence[str], emb: np.ndarray) -> None:
        if not len(sha256s):
            return
        buf = io.BytesIO()
        np.savez(buf, sha256=np.array(list(sha256s), dtype="U64"), emb=emb.astype(np.float32))
        raw = buf.getvalue()
        atomic_write_bytes(self.directory / f"shard-{_sha256_bytes(raw)}.npz", raw)
        self._load().update(zip(sha256s, emb))
