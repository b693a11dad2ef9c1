"""Embedding perturbation at inference time: the model stays as it is, its embeddings are changed on the way out.

Two kinds, each a `Perturbation` the attack runs through (`run_attack(..., perturbation=...)`):

  noise    Gaussian noise on image embeddings, then renormalised. `strength` is the noise's expected norm
           relative to the unit-norm embedding (per-dimension standard deviation strength / sqrt(D)). It is
           not aimed at anyone: it shows what blunt noise costs everybody.
  project  Removes from text embeddings (or image embeddings, or both) the subspace that carries the redacted
           names: the principal directions of the names' prompt embeddings (the paper's 21 templates) after
           subtracting, template by template, the mean embedding of made-up names in the same prompts, so what is
           removed is what is particular to these names rather than "a name in a prompt". `strength` is how many
           directions go, strongest first; a fraction removes that share of the last one (2.5: two directions
           entirely and half of the third). Default: one direction per redacted name.

Scikit-learn manner: `__init__` stores settings, `fit(loaded, names)` computes `directions_`, `save(path)` writes
a self-contained JSON (directions as lists, the checkpoint SHA-256 it was fitted on), `load_perturbation(path)`
reads it back (a regular file, bounded) with every field checked: strength 0 is refused (it turns the defense
off), and before an attack runs through a saved projection, `check_fitted` fits it again from the names it lists
on the attacked model and refuses a file whose directions remove other names than those (edited names). An
attack's manifest records the file's SHA-256 (`describe()["sha256"]` is that of its content). Each kind registers its class in PERTURBATIONS; the defenses of
defense/kinds/ name the class they fit. No torch at import: the command line reads SIDES.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from idia.attack.inputs.distractors import make_distractors
from idia.attack.inputs.prompts import PAPER_TEMPLATES, fill
from idia.errors import InputError
from idia.io import atomic_write_json, canonical_json, read_regular_bytes, sha256_text
from idia.names import normalize_name
from idia.registry import Registry

if TYPE_CHECKING:
    from idia.attack.model.adapter import LoadedModel

KIND_PERTURBATION = "idia-perturbation"
SCHEMA_VERSION = 1
SIDES = ("text", "image", "both")
# Every perturbation class by its `kind` (the file's "type"); they live in this module and register below.
PERTURBATIONS: Registry[type] = Registry("perturbation kind", key=lambda cls: cls.kind)


def _normalise(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norm, 1e-12)).astype(np.float32)


class _Fitted:
    """What both kinds share: the fitted model's identity, dimension checks, the JSON record."""

    kind = ""
    default_strength: float | None = None

    def _check_fitted(self) -> None:
        if not hasattr(self, "embed_dim_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted yet: call fit() first")

    def _check_dim(self, emb: np.ndarray) -> None:
        self._check_fitted()
        if emb.shape[-1] != self.embed_dim_:
            raise InputError(f"the perturbation was fitted on {self.embed_dim_}-dimensional embeddings "
                             f"(checkpoint {self.checkpoint_sha256_}); this model gives {emb.shape[-1]}")

    def _fit_common(self, loaded: LoadedModel, names: Sequence[str]) -> None:
        self.names_ = [normalize_name(n) for n in names]
        self.embed_dim_ = loaded.embed_dim
        self.checkpoint_sha256_ = loaded.checkpoint_sha256

    def settings(self) -> dict:
        raise NotImplementedError

    def describe(self) -> dict:
        """What the record says of it; `sha256` is that of its content (the JSON `save` writes, canonically
        spelled), `file` and `file_sha256` where it was read from a file."""
        self._check_fitted()
        out = {"kind": self.kind, **self.settings(), "names": self.names_,
               "checkpoint_sha256": self.checkpoint_sha256_, "embed_dim": self.embed_dim_,
               "sha256": sha256_text(canonical_json(self.to_dict()))}
        return {**out, **getattr(self, "source_", {})}

    def check_fitted(self, encoder) -> None:
        """Nothing to re-derive: what this kind does does not depend on its names."""

    def to_dict(self) -> dict:
        return {"kind": KIND_PERTURBATION, "schema_version": SCHEMA_VERSION, "type": self.kind,
                "settings": self.settings(), "names": self.names_, "checkpoint_sha256": self.checkpoint_sha256_,
                "embed_dim": self.embed_dim_, **self._fitted_arrays()}

    def _fitted_arrays(self) -> dict:
        return {}

    def save(self, path: str | Path) -> Path:
        """A self-contained JSON: settings, fitted directions, the checkpoint SHA-256 it was fitted on."""
        self._check_fitted()
        return atomic_write_json(path, self.to_dict())


@PERTURBATIONS.register
class NoisePerturbation(_Fitted):
    """Gaussian noise of norm about `strength` added to every image embedding, then renormalised.

    The noise is drawn afresh from `seed` on each call, so the same embeddings always get the same noise."""

    kind = "noise"
    default_strength = 0.5

    def __init__(self, strength: float = default_strength, seed: int = 0):
        self.strength = strength
        self.seed = seed

    def settings(self) -> dict:
        return {"strength": float(self.strength), "seed": int(self.seed), "applies_to": "image"}

    def fit(self, loaded: LoadedModel, names: Sequence[str] = (), encoder=None) -> "NoisePerturbation":
        if not (math.isfinite(self.strength) and self.strength > 0):
            raise InputError(f"noise strength must be a finite number above 0 (0 turns the defense off), got "
                             f"{self.strength}")
        self._fit_common(loaded, names)
        return self

    @classmethod
    def from_record(cls, data: dict, settings: dict, path: Path) -> "NoisePerturbation":
        """The unfitted perturbation a saved file describes (`load_perturbation` checked the common fields)."""
        p = cls(strength=float(settings["strength"]), seed=settings["seed"])
        _need(p.strength > 0, path, "noise strength must be above 0; 0 turns the defense off")
        return p

    def transform_image(self, emb: np.ndarray) -> np.ndarray:
        self._check_dim(emb)
        if self.strength == 0 or emb.size == 0:
            return emb.astype(np.float32, copy=True)
        rng = np.random.default_rng(self.seed)
        noise = rng.standard_normal(emb.shape) * (self.strength / math.sqrt(emb.shape[-1]))
        return _normalise(emb.astype(np.float64) + noise)

    def transform_text(self, emb: np.ndarray) -> np.ndarray:
        self._check_dim(emb)
        return emb.astype(np.float32, copy=True)


@PERTURBATIONS.register
class ProjectionPerturbation(_Fitted):
    """Removes the redacted names' directions from text and/or image embeddings, `strength` directions' worth."""

    kind = "project"
    default_strength = None  # one direction per name

    def __init__(self, strength: float | None = None, side: str = "text", templates: Sequence[str] = PAPER_TEMPLATES,
                 n_generic: int = 200, seed: int = 0):
        self.strength = strength
        self.side = side
        self.templates = templates
        self.n_generic = n_generic
        self.seed = seed

    def _strength(self) -> float | None:
        """The strength in force: as given, or one direction per name once fitted."""
        if self.strength is not None:
            return float(self.strength)
        return float(len(self.names_)) if hasattr(self, "names_") else None

    def settings(self) -> dict:
        return {"strength": self._strength(), "side": self.side,
                "templates": list(self.templates), "n_generic": int(self.n_generic), "seed": int(self.seed)}

    def _check_params(self) -> None:
        if self.strength is not None and not (math.isfinite(self.strength) and self.strength > 0):
            raise InputError(f"projection strength (directions removed) must be a number above 0 (0 turns the "
                             f"defense off), got {self.strength}")
        if self.side not in SIDES:
            raise InputError(f"projection side must be one of {', '.join(SIDES)}, got {self.side!r}")

    def fit(self, loaded: LoadedModel, names: Sequence[str], encoder=None) -> "ProjectionPerturbation":
        """directions_ [k, D], orthonormal, strongest first, k = ceil(strength) (at most the rank);
        explained_: each direction's share of what is particular to the names' prompts. `encoder` (an
        attack.encoder.Encoder) sets the device and precision of the prompts' encoding."""
        self._check_params()
        names = [normalize_name(n) for n in names]
        if not names:
            raise InputError("no names to fit the projection on")
        templates = list(self.templates)
        generic = make_distractors(self.n_generic, set(names), self.seed)
        texts = fill(templates, names + generic)
        if encoder is not None:
            emb = encoder.encode_texts(texts)
        else:
            from idia.attack.encode.encoder import encode_texts
            emb = encode_texts(loaded, texts, progress=False)
        emb = emb.reshape(len(templates), len(names) + len(generic), -1).astype(np.float64)
        particular = emb[:, :len(names)] - emb[:, len(names):].mean(axis=1, keepdims=True)
        _, s, vt = np.linalg.svd(particular.reshape(-1, emb.shape[-1]), full_matrices=False)
        rank = int((s > s[0] * 1e-6).sum()) if s.size and s[0] > 0 else 0
        if rank == 0:
            raise InputError("the names' prompt embeddings do not differ from other names'; nothing to project")
        k = max(1, min(math.ceil(self.strength if self.strength is not None else len(names)), rank))
        self._fit_common(loaded, names)
        self.directions_ = vt[:k].astype(np.float32)
        self.explained_ = [float(x) for x in (s[:k] ** 2 / (s ** 2).sum())]
        return self

    @classmethod
    def from_record(cls, data: dict, settings: dict, path: Path) -> "ProjectionPerturbation":
        """The fitted projection a saved file holds, its directions checked orthonormal."""
        dim = data["embed_dim"]
        templates = settings.get("templates")
        _need(isinstance(templates, list) and all(isinstance(t, str) for t in templates), path,
              "settings.templates must be a list of strings")
        p = cls(strength=float(settings["strength"]), side=settings.get("side"), templates=tuple(templates),
                n_generic=settings.get("n_generic", 0), seed=settings["seed"])
        p._check_params()
        directions = data.get("directions")
        _need(isinstance(directions, list) and directions and all(
            isinstance(row, list) and len(row) == dim and all(_number(x) for x in row) for row in directions),
            path, f"directions must be a non-empty list of {dim}-number lists")
        u = np.asarray(directions, dtype=np.float32)
        _need(np.allclose(u @ u.T, np.eye(len(u)), atol=1e-3), path, "directions are not orthonormal")
        p.directions_ = u
        explained = data.get("explained", [])
        _need(isinstance(explained, list) and all(_number(x) for x in explained), path,
              "explained must be a list of numbers")
        p.explained_ = [float(x) for x in explained]
        return p

    def _fitted_arrays(self) -> dict:
        return {"directions": self.directions_.tolist(), "explained": self.explained_}

    def check_fitted(self, encoder) -> None:
        """Fit again from the names and settings this perturbation lists, on the attacked model: the directions
        must span the same space (every principal angle's cosine at least 0.99). A file whose names were edited
        (the record would name people the directions do not remove) is refused. Only a perturbation read from a
        file is checked; one fitted in this process is what it says."""
        if not hasattr(self, "source_"):
            return
        again = ProjectionPerturbation(self.strength, self.side, self.templates, self.n_generic, self.seed).fit(
            encoder.loaded, self.names_, encoder=encoder)
        u, v = self.directions_.astype(np.float64), again.directions_.astype(np.float64)
        cosines = np.linalg.svd(u @ v.T, compute_uv=False) if len(u) == len(v) else np.zeros(1)
        if cosines.min() < 0.99:
            raise InputError(f"{self.source_['file']}: its directions are not those of the names it lists "
                             f"({', '.join(self.names_[:3])}{', ...' if len(self.names_) > 3 else ''}) on this "
                             "model: the file was edited after it was saved; fit it again with `idia defend "
                             "perturb`")

    def weights(self) -> np.ndarray:
        """How much of each direction goes: 1 for the first floor(strength), the fraction for the next, then 0."""
        return np.clip(self._strength() - np.arange(len(self.directions_)), 0.0, 1.0)

    def _project(self, emb: np.ndarray) -> np.ndarray:
        self._check_dim(emb)
        w = self.weights()
        if not w.any() or emb.size == 0:
            return emb.astype(np.float32, copy=True)
        u = self.directions_.astype(np.float64)
        x = emb.astype(np.float64)
        return _normalise(x - ((x @ u.T) * w) @ u)

    def transform_text(self, emb: np.ndarray) -> np.ndarray:
        return self._project(emb) if self.side in ("text", "both") else self._same(emb)

    def transform_image(self, emb: np.ndarray) -> np.ndarray:
        return self._project(emb) if self.side in ("image", "both") else self._same(emb)

    def _same(self, emb: np.ndarray) -> np.ndarray:
        self._check_dim(emb)
        return emb.astype(np.float32, copy=True)


def make_perturbation(kind: str, strength: float | None = None, seed: int = 0, **settings):
    """An unfitted perturbation of the given kind ("noise" or "project"), at its default strength unless given."""
    cls = PERTURBATIONS.get(kind)
    strength = cls.default_strength if strength is None else float(strength)
    return cls(strength=strength, seed=seed, **settings)


# --- reading a saved perturbation ----------------------------------------------------------------------------

def _need(cond: bool, path: Path, problem: str) -> None:
    if not cond:
        raise InputError(f"{path}: not a valid idia perturbation file ({problem})")


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def load_perturbation(path: str | Path):
    """A fitted perturbation from the JSON `save` wrote; anything malformed is an InputError naming the file."""
    path = Path(path)
    raw = read_regular_bytes(path, MAX_PERTURBATION_BYTES, what="perturbation file",
                             missing="no such perturbation file")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not a JSON perturbation file ({e})") from None
    _need(isinstance(data, dict), path, "expected a JSON object")
    _need(data.get("kind") == KIND_PERTURBATION, path, f"kind is {data.get('kind')!r}, expected {KIND_PERTURBATION!r}")
    _need(data.get("schema_version") == SCHEMA_VERSION, path, f"schema_version {data.get('schema_version')!r}")
    kind, settings = data.get("type"), data.get("settings")
    _need(isinstance(kind, str) and kind in PERTURBATIONS, path,
          f"type {kind!r} is not one of {', '.join(PERTURBATIONS.names())}")
    _need(isinstance(settings, dict), path, "settings must be an object")
    _need(_number(settings.get("strength")), path, "settings.strength must be a number")
    _need(isinstance(settings.get("seed"), int), path, "settings.seed must be an integer")
    dim = data.get("embed_dim")
    _need(isinstance(dim, int) and dim > 0, path, "embed_dim must be a positive integer")
    names = data.get("names")
    _need(isinstance(names, list) and all(isinstance(n, str) for n in names), path, "names must be a list of strings")
    sha = data.get("checkpoint_sha256")
    # Without the hash the attack could not check that the perturbation belongs to the model: refused.
    _need(isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha), path,
          "checkpoint_sha256 must be the SHA-256 (64 hex digits) of the checkpoint it was fitted on, got "
          f"{sha!r}")
    try:
        p = PERTURBATIONS.get(kind).from_record(data, settings, path)
    except InputError as e:
        if str(e).startswith(str(path)):
            raise
        raise InputError(f"{path}: not a valid idia perturbation file ({e})") from None
    except (TypeError, ValueError) as e:
        raise InputError(f"{path}: not a valid idia perturbation file ({e})") from None
    p.names_, p.embed_dim_, p.checkpoint_sha256_ = [normalize_name(n) for n in names], dim, sha
    p.source_ = {"file": str(path), "file_sha256": hashlib.sha256(raw).hexdigest()}
    return p


MAX_PERTURBATION_BYTES = 256 << 20  # directions of a few hundred names at a few thousand dimensions fit easily
