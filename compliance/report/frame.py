"""The legal and regulatory frame's data, each rendered as a small block: who audited for whom (the auditor), who
signed (the signature block), what the attack needs and what it cost (the threat model, measured from the run),
which model this is beyond a path (provider, version, where obtained) and whether it is idia's synthetic world.

Everything here is read from the record or given by the auditor; nothing is computed beyond sums of the
record's own timings. A leaf: imports nothing of ours but the errors.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cache
from importlib.resources import files

from idia.errors import InputError

DEFAULT_INDEPENDENCE = None  # no statement is made for an auditor who gives none


@dataclass(frozen=True)
class Auditor:
    """Who ran the audit and for whom (`--auditor FILE`, or `auditor:` in the audit's YAML)."""

    name: str
    organisation: str | None = None
    on_behalf_of: str | None = None
    independence: str | None = None

    @classmethod
    def from_dict(cls, d: dict) -> "Auditor":
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"auditor: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
        if not isinstance(d.get("name"), str) or not d["name"].strip():
            raise InputError("auditor: 'name' is required (who ran the audit)")
        return cls(**{k: (str(v) if v is not None else None) for k, v in d.items()})

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SignatureBlock:
    """What page 1 says about the signature before it is made: the signer's certificate as pyHanko reads it."""

    name: str
    organisation: str | None
    certificate_sha256: str
    issuer: str
    timestamped_by: str | None = None


# --- the model beyond its path ----------------------------------------------------------------------------

MODEL_KEYS = ("provider", "version", "obtained_from")


@cache
def _world_checkpoint_sha256() -> str | None:
    """The shipped synthetic world's checkpoint SHA-256, read from its world.json (no torch)."""
    try:
        text = files("idia.world").joinpath("shipped", "world.json").read_text(encoding="utf-8")
        return json.loads(text).get("checkpoint_sha256")
    except (OSError, ValueError):
        return None


def is_synthetic_world(checkpoint_sha256: str | None) -> bool:
    return bool(checkpoint_sha256) and checkpoint_sha256 == _world_checkpoint_sha256()


def model_identity(manifest: dict, model: dict) -> dict:
    """Provider, version and where the model was obtained: as the auditor stated them (`model_info:` in the
    YAML, recorded in the manifest), else what the record shows of the synthetic world, else not stated."""
    stated = manifest.get("model_info") or {}
    world = is_synthetic_world(model.get("checkpoint_sha256"))
    if world and not stated:
        stated = {"provider": "idia (made-up people; not a real model)",
                  "version": f"the synthetic world shipped with idia {manifest.get('tool_version', '')}".strip(),
                  "obtained_from": "installed with idia (idia.world, shipped/)"}
    return {"synthetic_world": world, "stated": bool(manifest.get("model_info")),
            **{k: stated.get(k) for k in MODEL_KEYS}, "format": model.get("source_format")}


# --- the threat model and the attacker's cost ----------------------------------------------------------------

def threat_model(data: dict, persons: list[dict], run_people: int | None = None) -> dict:
    """What the attack needs (query access, photos, names) and what this run cost, from the record. `persons`
    are the people the report is about; `run_people`, when they are a part of the run, how many it audited."""
    manifest = data["manifest"]
    runtime = manifest.get("runtime") or {}
    timings = manifest.get("timings") or {}
    caches = (data.get("encoding") or {}).get("caches") or {}
    photos = sorted(p["n_images"] for p in persons)
    return {
        "n_people": len(persons), "n_photos": sum(photos), "run_people": run_people,
        "photos_min": photos[0] if photos else 0, "photos_max": photos[-1] if photos else 0,
        "photos_median": photos[len(photos) // 2] if photos else 0,
        "n_candidates": data["rule"]["n_candidates"], "n_prompts": data["rule"]["n_prompts"],
        "candidates_source": data["candidates"].get("source"), "question": data["candidates"].get("question"),
        "seconds": timings.get("total_s"), "timings": timings,
        "images_encoded": caches.get("images_encoded"), "images_from_cache": caches.get("images_from_cache"),
        "device": runtime.get("device"), "device_name": runtime.get("device_name"),
        "cpu_count": runtime.get("cpu_count"), "threads": runtime.get("torch_threads"),
        "precision": runtime.get("precision"), "platform": runtime.get("platform"),
    }
