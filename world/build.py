"""Build the shipped world model, and get at it: the default world's checkpoint, its ground truth, its photos.

`idia world build` calls `build_world_model`: train from the seed, write the checkpoint in open_clip's hub layout
(the same loader reads it as a user's model), measure how well the attack separates members from non-members
on fresh photos, and record all of it, with the checkpoint's SHA-256, in `world.json`.
"""

from __future__ import annotations

import json
import tempfile
from importlib import resources
from pathlib import Path

import torch

from idia.attack.model.formats.openclip_hub import HUB_WEIGHTS
from idia.attack.model.load import save_hub_folder
from idia.errors import InputError
from idia.io import atomic_write_json, sha256_file
from idia.world.train import OPENAI_MEAN, OPENAI_STD, TrainSpec, train_world_model
from idia.world.world import World, WorldSpec, make_world, write_photos

WORLD_RECORD = "world.json"
PREPROCESS = {"mean": list(OPENAI_MEAN), "std": list(OPENAI_STD), "interpolation": "bicubic",
              "resize_mode": "shortest"}


def shipped_model_dir() -> Path:
    """The folder (open_clip hub layout) holding the default world's model and world.json."""
    return Path(str(resources.files("idia.world").joinpath("shipped")))


def read_world_record(model_dir: str | Path | None = None) -> dict:
    path = Path(model_dir or shipped_model_dir()) / WORLD_RECORD
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no world record here (run `idia world build`)") from None


def load_world(model_dir: str | Path | None = None) -> World:
    """The world a model folder was trained on, rebuilt from the recorded spec and checked against the record."""
    record = read_world_record(model_dir)
    world = make_world(WorldSpec.from_dict(record["spec"]))
    if {p.name: p.role for p in world.identities} != record["membership"]:
        raise InputError(f"{model_dir or shipped_model_dir()}: the recorded membership does not match the world "
                         "its spec generates (different name lists or generator version)")
    return world


def evaluate_world_model(model_dir: Path, world: World, images_per_person: int = 10, progress: bool = False,
                         device: str = "cpu", precision: str = "fp32") -> dict:
    """IDIA on fresh photos of the world's members and non-members (paper rule, default candidates), and the
    calibrated rule with the reference people: the separation the tests and the demo rely on."""
    from idia.attack.run import run_attack
    from idia.attack.settings import AttackSettings
    with tempfile.TemporaryDirectory() as tmp:
        write_photos(world, tmp, images_per_person=images_per_person, shapes_per_class=1)
        base = dict(model=str(model_dir), people=Path(tmp) / "people", labels=Path(tmp) / "labels.json",
                    cache_dir=Path(tmp) / "cache", progress=progress, command="idia world build",
                    device=device, precision=precision)
        paper = run_attack(AttackSettings(**base, rule="paper")).result.metrics
        calibrated = run_attack(AttackSettings(**base, reference=Path(tmp) / "reference")).result.metrics
    keep = ("tpr", "fpr", "accuracy", "precision")
    return {
        "images_per_person": images_per_person,
        "paper_rule_tau1": {k: paper[k] for k in keep},
        "calibrated_continuous_fpr0.05": {k: calibrated[k] for k in keep},
        "auc_continuous": paper["roc"]["auc"],
        "auc_paper_score": paper["roc_paper_score"]["auc"],
        "tpr_at_1pct_fpr_continuous": paper["roc"]["tpr_at_1pct_fpr"],
    }


def build_world_model(out: str | Path | None = None, spec: WorldSpec = WorldSpec(), train: TrainSpec = TrainSpec(),
                      progress: bool = True, evaluate: bool = True, device: str = "cpu",
                      precision: str = "fp32") -> dict:
    """Train the world's tiny CLIP from its seed and write it, with its record, in hub layout to `out`."""
    out = Path(out or shipped_model_dir())
    world = make_world(spec)
    model, model_cfg, record = train_world_model(world, train, progress=progress, device=device, precision=precision)
    # Shipped in float16 (half the bytes); the record's numbers are measured on exactly these weights.
    save_hub_folder(model, model_cfg, PREPROCESS, out, dtype=torch.float16)
    digest = sha256_file(out / HUB_WEIGHTS[0])
    world_record = {
        "spec": spec.to_dict(),
        "training": record,
        "checkpoint": HUB_WEIGHTS[0],
        "checkpoint_sha256": digest,
        "membership": {p.name: p.role for p in world.identities},
        "train_images_per_member": {p.name: p.n_train_images for p in world.members},
        "confusable_names": {p.name: p.shares_name_with for p in world.identities if p.shares_name_with},
        "regenerate": "idia world build" + ("" if out == shipped_model_dir() else f" --out {out}")
                      + (f" --seed {spec.seed}" if spec.seed else "") + (f" --steps {train.steps}"
                                                                         if train.steps != TrainSpec().steps else ""),
    }
    if evaluate:
        world_record["evaluation"] = evaluate_world_model(out, world, progress=progress, device=device,
                                                          precision=precision)
    atomic_write_json(out / WORLD_RECORD, world_record)
    return world_record
