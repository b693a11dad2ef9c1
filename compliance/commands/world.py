"""`idia world`: the synthetic identity world's model, fresh photos of its people, and the study on it."""

from __future__ import annotations

from pathlib import Path

import click

from idia.compliance.commands.common import (
    click_options,
    friendly_errors,
    quiet_option,
)
from idia.errors import InputError


@click.group()
def world():
    """The synthetic identity world: its shipped model, and fresh photos to audit."""


@world.command("build")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write the model folder (default: the shipped one inside the package).")
@click.option("--seed", type=int, default=0, show_default=True, help="The world's and the training's seed.")
@click.option("--steps", type=int, default=None, help="Training steps (default: the shipped model's).")
@click.option("--no-evaluate", is_flag=True, help="Skip measuring the attack's separation after training.")
@click_options("device", "precision", defaults={"device": "cpu"})
@quiet_option
@friendly_errors
def world_build(out, seed, steps, no_evaluate, device, precision, quiet):
    """Train the world's tiny CLIP from its seed and record its SHA-256 and measured separation.

    On the CPU in fp32 (the default), with the recorded thread count, a machine like the one that built it
    reproduces the shipped checkpoint byte for byte; another CPU model changes the last bits of the floats, so
    the SHA-256 differs there (the world's people, photos and captions do not)."""
    from idia.attack.settings import check_value
    from idia.world import WorldSpec, build_world_model
    from idia.world.train import TrainSpec
    for name, value in (("seed", seed), ("device", device)):
        if check_value(name, value):
            raise InputError(f"--{name} {check_value(name, value)}")
    if steps is not None and steps < 1:
        raise InputError(f"--steps must be at least 1, got {steps}")
    train = TrainSpec(seed=seed) if steps is None else TrainSpec(seed=seed, steps=steps)
    record = build_world_model(out, WorldSpec(seed=seed), train, progress=not quiet, evaluate=not no_evaluate,
                               device=device, precision=precision)
    click.echo(f"checkpoint sha256 {record['checkpoint_sha256']}")
    click.echo(f"trained in {record['training']['train_seconds']} s "
               f"({record['training']['images_per_second']} images/s)")
    if "evaluation" in record:
        ev = record["evaluation"]
        click.echo(f"paper rule: TPR {ev['paper_rule_tau1']['tpr']:.3f} FPR {ev['paper_rule_tau1']['fpr']:.3f}; "
                   f"AUC continuous {ev['auc_continuous']:.3f}, paper score {ev['auc_paper_score']:.3f}")


@world.command("photos")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write people/, reference/, shapes/ and labels.json into.")
@click.option("--model-dir", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="A world model folder (default: the shipped one); its world.json says who is who.")
@click.option("--images", "images_per_person", type=int, default=10, show_default=True,
              help="Fresh photos per person.")
@click.option("--shapes", "shapes_per_class", type=int, default=10, show_default=True,
              help="Pictures per shape class (the utility task).")
@quiet_option
@friendly_errors
def world_photos(out, model_dir, images_per_person, shapes_per_class, quiet):
    """Render fresh, never-trained photos: people/<Full Name>/*.png, reference/..., shapes/..., labels.json."""
    from idia.world import load_world, write_photos
    labels = write_photos(load_world(model_dir), out, images_per_person, shapes_per_class)
    if not quiet:
        click.echo(f"{len(labels)} people to audit ({sum(labels.values())} members) in {out / 'people'}; "
                   f"reference non-members in {out / 'reference'}; ground truth in {out / 'labels.json'}")



@world.command("captions")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write the webdataset shards (train-NNNNN.tar) into.")
@click.option("--model-dir", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="A world model folder (default: the shipped one); its world.json says who is who.")
@click.option("--members", type=int, default=None, help="Only the first N members (default: all).")
@click.option("--shapes", type=int, default=None, help="Only the first N shape pictures (default: all).")
@click.option("--images/--no-images", default=True, show_default=True, help="Write each caption's picture too.")
@quiet_option
@friendly_errors
def world_captions(out, model_dir, members, shapes, images, quiet):
    """Write the world's training set as webdataset shards: each training picture with a caption (members named,
    shapes described), for `idia scan` to read."""
    from idia.world import load_world
    from idia.world.world import write_training_captions
    counts = write_training_captions(load_world(model_dir), out, members=members, shapes=shapes, images=images)
    if not quiet:
        click.echo(f"{sum(counts.values())} captions naming {len(counts)} members, and the shape pictures, in {out}")


@world.command("study")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write study.json and study.png into.")
@click.option("--model-dir", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="A world model folder (default: the shipped one).")
@click.option("--photos", "photos_dir", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="Photos already written by `idia world photos` (default: render 20 fresh ones a person).")
@click.option("--alpha", type=float, default=0.01, show_default=True, help="The permutation test's level.")
@quiet_option
@friendly_errors
def world_study(out, model_dir, photos_dir, alpha, quiet):
    """Identification rate against occurrences in training and photos per person, with 95% intervals."""
    from idia.world.study import run_study
    record = run_study(out, model_dir, alpha=alpha, progress=not quiet, photos_dir=photos_dir)
    if not quiet:
        for row in record["by_occurrences"]:
            click.echo(f"{row['occurrences']:>3} occurrences: paper {row['paper']['rate']:.2f}, "
                       f"permutation {row['permutation']['rate']:.2f} (n={row['paper']['n']})")
        click.echo(f"wrote {Path(out) / 'study.json'} and {Path(out) / 'study.png'}")
