"""`idia defend redact|perturb|sweep` and `idia verify`: thin wrappers over defense/ (parse options, call, print)."""

from __future__ import annotations

from pathlib import Path

import click

from attack.errors import InputError
from attack.settings import click_options
from compliance.commands.common import (device_options, friendly_errors, quiet_option, resolve_model_arg,
                                        runtime_options, warn_printer, with_model)


def _strengths(ctx, param, value):
    if value is None:
        return None
    try:
        levels = [float(x) for x in value.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got {value!r}") from None
    if not levels:
        raise click.BadParameter("no strengths given")
    return levels



names_option = click.option("--names", "names_file", type=click.Path(dir_okay=False, path_type=Path), required=True,
                            help="The names to redact, one per line.")
kind_option = click.option("--kind", type=click.Choice(["noise", "project"]), default="project", show_default=True,
                           help="noise: Gaussian noise on image embeddings; project: remove the names' directions "
                                "from text embeddings.")
strength_option = click.option(
    "--strength", type=float, default=None,
    help="noise: the noise's norm relative to a unit embedding (default 0.5); project: how many of the names' "
         "directions are removed, fractions blend (default: one per name).")
people_options = click_options("people", "reference", "labels", "max_images", "candidates", "n_candidates",
                                "candidate_set", "distractors", "aliases", "rule", "alpha", "tau", "target_fpr")
utility_option = click.option("--utility", type=click.Path(file_okay=False, path_type=Path), default=None,
                              help="Labelled folder (one sub-folder per class) for zero-shot top-1 accuracy, "
                                   "e.g. the world's shapes/.")
utility_prompt_option = click.option("--utility-prompt", default="a photo of a {label}", show_default=True,
                                     help="Class prompt of the utility task, with '{label}'.")


def _known_names(keep_names: Path | None) -> list[str] | None:
    from attack.names import read_name_file
    known = read_name_file(keep_names) if keep_names else []
    return known or None


def _load(model: str, checkpoint: str | None, device: str):
    from attack.device import resolve_device
    from attack.models import load_clip
    return load_clip(resolve_model_arg(model), checkpoint, device=resolve_device(device))


@click.group()
def defend():
    """Defenses that make a model forget names; each yields something `idia attack` can be rerun on."""


@defend.command("redact")
@with_model
@names_option
@click.option("--neutral", default="a person", show_default=True, help="What a redacted name should read as.")
@click.option("--captions", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Clean captions for the utility term, one per line (default: the bundled corpus).")
@click.option("--keep-names", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Other people's names the model must keep knowing, one per line; those sharing a first or last "
                   "name with a redacted person are protected as neighbours.")
@click.option("--steps", type=click.IntRange(1), default=None, help="Training steps (default 200).")
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=None, help="Learning rate (default 5e-4).")
@click_options("seed")
@device_options
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for the defended model (open_clip hub layout) and redaction.json.")
@quiet_option
@friendly_errors
def redact(model, checkpoint, names_file, neutral, captions, keep_names, steps, lr, seed, device, precision, out,
           quiet):
    """Fine-tune the text encoder so the names read as a neutral phrase (Hintersdorf et al., ECAI 2024)."""
    from attack.settings import AttackSettings
    from defense.redact import NameRedactor, read_captions, read_redaction_names
    AttackSettings(model=model, people=Path("."), seed=seed, device=device, precision=precision).validate()
    names = read_redaction_names(names_file)
    params = {"neutral": neutral, "seed": seed, "progress": not quiet, "precision": precision}
    params.update({k: v for k, v in (("steps", steps), ("lr", lr)) if v is not None})
    redactor = NameRedactor(**params)
    loaded = _load(model, checkpoint, device)
    redactor.fit(loaded, names, read_captions(captions) if captions else None,
                 keep_names=_known_names(keep_names), warn=warn_printer(quiet))
    folder = redactor.save(out)
    if not quiet:
        first, last = redactor.losses_[0], redactor.losses_[-1]
        click.echo(f"redacted {len(redactor.names_)} name(s), protected {len(redactor.neighbours_)} neighbour "
                   f"name(s), {len(redactor.losses_)} steps in {redactor.seconds_:.1f} s; redaction loss "
                   f"{first['redaction']:.4f} -> {last['redaction']:.4f}, utility loss {last['utility']:.4f}", err=True)
        click.echo(f"checkpoint sha256 {redactor.checkpoint_sha256_before_} -> {redactor.checkpoint_sha256_after_}",
                   err=True)
    click.echo(str(folder))


@defend.command("perturb")
@with_model
@names_option
@kind_option
@strength_option
@click.option("--side", type=click.Choice(["text", "image", "both"]), default="text", show_default=True,
              help="project: which embeddings lose the names' directions.")
@click_options("seed")
@device_options
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="JSON file for the perturbation (use with `idia attack --perturbation`).")
@quiet_option
@friendly_errors
def perturb(model, checkpoint, names_file, kind, strength, side, seed, device, precision, out, quiet):
    """Fit an inference-time embedding perturbation for the names and save it as JSON."""
    from attack.settings import AttackSettings
    from defense.perturb import make_perturbation
    from defense.redact import read_redaction_names
    AttackSettings(model=model, people=Path("."), seed=seed, device=device, precision=precision).validate()
    names = read_redaction_names(names_file)
    extra = {"side": side} if kind == "project" else {}
    from attack.encoder import Encoder
    loaded = _load(model, checkpoint, device)
    encoder = Encoder(loaded, device=device, precision=precision, use_cache=False, progress=False)
    p = make_perturbation(kind, strength, seed=seed, **extra).fit(loaded, names, encoder=encoder)
    path = p.save(out)
    if not quiet and kind == "project":
        click.echo(f"strength {p.settings()['strength']:g}: {len(p.directions_)} direction(s), carrying "
                   f"{sum(p.explained_):.0%} of what is particular to the names' prompts", err=True)
    click.echo(str(path))


@defend.command("sweep")
@with_model
@people_options
@names_option
@kind_option
@click.option("--strengths", callback=_strengths, required=True,
              help="Comma-separated strengths, e.g. 0,2,5,10 (project) or 0.25,0.5,1,2 (noise); a 0 baseline is "
                   "always added.")
@utility_option
@utility_prompt_option
@click_options("seed")
@runtime_options
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for sweep.json and sweep.csv.")
@quiet_option
@friendly_errors
def sweep_command(names_file, kind, strengths, utility, utility_prompt, out, quiet, **options):
    """The trade-off of a perturbation: redacted people's identification vs other members' vs utility."""
    from attack.encoder import Encoder
    from attack.settings import from_options
    from defense.redact import read_redaction_names
    from defense.sweep import sweep
    from defense.utility import ZeroShotTask
    attack = from_options(options, model=resolve_model_arg(options["model"]), progress=not quiet)
    names = read_redaction_names(names_file)
    encoder = Encoder.from_settings(_load(attack.model, attack.checkpoint, attack.device), attack,
                                    warn=warn_printer(quiet))
    task = ZeroShotTask.encode(encoder.loaded, utility, utility_prompt, not quiet, encoder) if utility else None
    result = sweep(encoder, names, kind, strengths, attack, task, seed=attack.seed, warn=warn_printer(quiet))
    labels = attack.labels
    result.write(out)
    click.echo(f"identification rate of the redacted people, of the other {'members' if labels else 'people'}, "
               f"and zero-shot top-1, by {kind} strength:")
    click.echo(result.table())
    for line in result.warnings:
        click.echo(f"warning: {line}")
    click.echo(str(out / "sweep.json"))


sweep_command.name = "sweep"


@click.command()
@with_model
@people_options
@names_option
@click.option("--defense", type=click.Choice(["redact", "perturb"]), default="redact", show_default=True)
@kind_option
@strength_option
@click.option("--strengths", callback=_strengths, default=None,
              help="perturb: also sweep these comma-separated strengths.")
@utility_option
@utility_prompt_option
@click.option("--steps", type=click.IntRange(1), default=None, help="redact: training steps (default 200).")
@click.option("--neutral", default="a person", show_default=True, help="redact: what a redacted name should read as.")
@click.option("--captions", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="redact: clean captions, one per line (default: the bundled corpus).")
@click.option("--keep-names", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="redact: other people's names the model must keep knowing.")
@click_options("seed")
@runtime_options
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for verification.json, before/, after/ and the defense.")
@quiet_option
@friendly_errors
def verify(names_file, defense, kind, strength, strengths, utility, utility_prompt, steps, neutral, captions,
           keep_names, out, quiet, **options):
    """Attack, defend, attack again: did the names go, who else went with them, what did utility lose?"""
    from attack.settings import from_options
    from defense.verify import VerifyConfig, verify as run_verify, write_verification
    if steps is not None and steps < 1:
        raise InputError(f"--steps must be at least 1, got {steps}")
    attack = from_options(options, model=resolve_model_arg(options["model"]), progress=not quiet)
    cfg = VerifyConfig(attack=attack, names=names_file, defense=defense, kind=kind, strength=strength,
                       strengths=strengths, utility=utility, utility_prompt=utility_prompt, steps=steps,
                       neutral=neutral, captions=captions, keep_names=keep_names)
    v = run_verify(cfg, warn=warn_printer(quiet))
    path = write_verification(v, out)
    s = v.record["summary"]
    for group in ("redacted", "neighbours", "collateral"):
        g = s[group]
        click.echo(f"{group:>10}: {g['identified_before']}/{g['n']} identified before, "
                   f"{g['identified_after']}/{g['n']} after")
    if s["utility"]:
        u = s["utility"]
        click.echo(f"{'utility':>10}: zero-shot top-1 {u['top1_before']:.3f} -> {u['top1_after']:.3f}")
    if v.sweep is not None:
        click.echo(v.sweep.table())
        for line in v.sweep.warnings:
            click.echo(f"warning: {line}")
    click.echo(str(path))
