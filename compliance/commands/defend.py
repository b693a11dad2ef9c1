"""`idia defend redact|perturb|sweep` and `idia verify`: thin wrappers over defense/ (parse options, call, print)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import click

from idia.compliance.commands.common import (
    LazyChoice,
    click_options,
    device_options,
    friendly_errors,
    quiet_option,
    resolve_model_arg,
    runtime_options,
    warn_printer,
    with_model,
)
from idia.errors import InputError


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



def _int_list(ctx, param, value):
    if value is None or not value.strip():
        return ()
    try:
        steps = tuple(int(x) for x in value.split(",") if x.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated whole numbers, got {value!r}") from None
    if any(s < 1 for s in steps):
        raise click.BadParameter(f"step counts must be at least 1, got {value!r}")
    return steps


def _registry():
    from idia.defense import base
    return base


def _face_targets() -> tuple[str, ...]:
    from idia.defense.redact_image import TARGETS
    return TARGETS


def _presets() -> tuple[str, ...]:
    from idia.defense.redact import PRESETS as TEXT
    from idia.defense.redact_image import PRESETS as IMAGE
    return tuple(dict.fromkeys([*TEXT, *IMAGE]))


def _sides() -> tuple[str, ...]:
    from idia.defense.perturb import SIDES
    return SIDES


def _variant(family: str, value: str | None) -> str:
    """The variant given, or the family's default (the registry's first)."""
    return value if value is not None else _registry().variants(family)[0]


class LazyHelpOption(click.Option):
    """An option whose help is written when it is shown: the text lists what the defense registry holds, and
    reading the registry when the command is defined would import every defense with the command line."""

    def __init__(self, *args, help_text: Callable[[], str], **kwargs):
        super().__init__(*args, **kwargs)
        self._help_text = help_text

    def get_help_record(self, ctx):
        if self.help is None:
            self.help = self._help_text()
        return super().get_help_record(ctx)


def registry_option(key: str):
    """A click option for one of the defense registry's options (`defense.base.Option`): its help and check are
    the registry's, read when the help is shown or a value is given (reading the registry imports every defense)."""
    def check(ctx, param, value):
        if value is None:
            return None
        problem = _registry().all_options()[key].check(value)
        if problem:
            raise click.BadParameter(problem)
        return value
    return click.option(f"--{key.replace('_', '-')}", key, cls=LazyHelpOption, default=None, callback=check,
                        help_text=lambda: f"redact: {_registry().all_options()[key].help}.")


def _summaries(family: str) -> str:
    """'a (default): what a does; b: what b does', from the registry (the default is listed first)."""
    listed = _registry().summaries(family).items()
    return "; ".join(f"{v}{' (default)' if i == 0 else ''}: {summary}" for i, (v, summary) in enumerate(listed))


names_option = click.option("--names", "names_file", type=click.Path(dir_okay=False, path_type=Path), required=True,
                            help="The names to redact, one per line.")
kind_option = click.option(
    "--kind", cls=LazyHelpOption, type=LazyChoice(lambda: _registry().variants("perturb")), default=None,
    help_text=lambda: f"perturb: {_summaries('perturb')}.")
tower_option = click.option(
    "--tower", cls=LazyHelpOption, type=LazyChoice(lambda: _registry().towers()), default=None,
    help_text=lambda: f"redact: {_summaries('redact')}; {_registry().BOTH}: text, then image. image and both train "
                      "on half of each redacted person's photos (--people).")
face_target_option = click.option(
    "--face-target", type=LazyChoice(_face_targets), default=None,
    help="redact, image tower: what a redacted face should embed as: name-null (its own embedding without its "
         "name's direction; default) or mean (the mean face, as the authors; their --preset's choice).")
preset_option = click.option("--preset", type=LazyChoice(_presets), default=None,
                             help="redact: the published settings (target 'human', LayerNorms frozen, lr 1e-4, 400 "
                                  "steps halved at 200 and 300, redaction weight 0.6, unsquared drift norm; image: the "
                                  "mean face, the whole tower, lr 1e-4, 100 steps).")
strength_option = click.option(
    "--strength", type=float, default=None,
    help="noise: the noise's norm relative to a unit embedding (default 0.5); project: how many of the names' "
         "directions are removed, fractions blend (default: one per name).")
people_options = click_options("people", "reference", "labels", "max_images", "candidates", "n_candidates",
                                "candidate_set", "distractors", "distractor_draw", "attributes", "aliases", "rule",
                                "alpha", "tau", "target_fpr")
utility_option = click.option("--utility", type=click.Path(file_okay=False, path_type=Path), default=None,
                              help="Labelled folder (one sub-folder per class) for zero-shot top-1 accuracy, "
                                   "e.g. the world's shapes/.")
utility_prompt_option = click.option("--utility-prompt", default="a photo of a {label}", show_default=True,
                                     help="Class prompt of the utility task, with '{label}'.")


def _known_names(keep_names: Path | None) -> list[str] | None:
    from idia.attack.inputs.names import read_name_file
    known = read_name_file(keep_names) if keep_names else []
    return known or None


def _load(model: str, checkpoint: str | None, device: str):
    from idia.attack.model.device import resolve_device
    from idia.attack.model.load import load_clip
    return load_clip(resolve_model_arg(model), checkpoint, device=resolve_device(device))


@click.group()
def defend():
    """Defenses that make a model forget names; each yields something `idia attack` can be rerun on."""


@defend.command("redact")
@with_model
@names_option
@tower_option
@click.option("--people", "people_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="image/both: one folder of photos per person; only those named in --names are unlearnt (half "
                   "of each person's photos, chosen by --seed; the rest are left for verification), everyone "
                   "else's are kept.")
@preset_option
@click.option("--neutral", default=None, help="What a redacted name should read as (default 'a person').")
@face_target_option
@click.option("--captions", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Clean captions for the utility term, one per line (default: the bundled corpus).")
@click.option("--keep-names", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Other people's names the model must keep knowing, one per line; those sharing a first or last "
                   "name with a redacted person are protected as neighbours.")
@click.option("--steps", type=click.IntRange(1), default=None, help="Training steps (default 200).")
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=None,
              help="Learning rate (default 5e-4 text, 1e-3 image).")
@registry_option("variants")
@click_options("seed")
@device_options
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for the defended model (open_clip hub layout) and redaction.json.")
@quiet_option
@friendly_errors
def redact(model, checkpoint, names_file, tower, people_dir, preset, neutral, face_target, captions, keep_names, steps,
           lr, variants, seed, device, precision, out, quiet):
    """Fine-tune the text tower so the names read as a neutral phrase, the image tower so the faces lose their
    names' directions (or, as the authors, embed like the mean face), or both (Hintersdorf et al., ECAI 2024)."""
    from idia.attack.settings import AttackSettings
    from idia.defense.redact import read_redaction_names
    from idia.defense.redact_image import FaceRedactor
    from idia.defense.tuning import face_tuning
    AttackSettings(model=model, people=Path("."), seed=seed, device=device, precision=precision).validate()
    names = read_redaction_names(names_file)
    tower = _variant("redact", tower)
    chain = _registry().resolve("redact", tower)
    if any(d.needs_photos for d in chain) and people_dir is None:
        raise InputError(f"--tower {tower} needs --people (the redacted people's photos)")
    loaded = _load(model, checkpoint, device)
    from idia.attack.encode.encoder import Encoder
    encoder = Encoder(loaded, device=device, precision=precision, use_cache=False, progress=False)
    unlearn, retain, split = {}, {}, None
    if people_dir is not None and any(d.needs_photos for d in chain):
        from idia.attack.inputs.people import scan_people
        from idia.defense.probes import photo_sets, split_photos
        split = split_photos(scan_people(people_dir, warn=warn_printer(quiet)), seed, need=names)
        unlearn, retain = photo_sets(split, names)
    context = _registry().DefenseContext(loaded=loaded, encoder=encoder, names=names, seed=seed,
                                         progress=not quiet, known_names=_known_names(keep_names) or [],
                                         unlearn_photos=unlearn, retain_photos=retain, warn=warn_printer(quiet))
    options = {"neutral": neutral, "face_target": face_target, "steps": steps, "lr": lr, "preset": preset,
               "captions": captions, "variants": variants}
    applied = _registry().apply_chain(chain, context, options)
    folder = applied.save_model(out)
    if split is not None:
        from idia.io import atomic_write_json
        atomic_write_json(folder / "photo-split.json", split.to_dict())
    redactor = applied.stages[0].estimator if applied.stages else applied.estimator
    if not quiet and isinstance(applied.estimator, FaceRedactor):
        first, last = applied.estimator.losses_[0], applied.estimator.losses_[-1]
        click.echo(f"image tower: unlearnt {sum(len(v) for v in unlearn.values())} photo(s) of "
                   f"{len(applied.estimator.names_)} people, kept {sum(len(v) for v in retain.values())}; redaction loss "
                   f"{first['redaction']:.4f} -> {last['redaction']:.4f}", err=True)
        advice = face_tuning()["recommendation"]
        if advice:
            click.echo(f"note: {advice}", err=True)
    if not quiet and not isinstance(redactor, FaceRedactor):
        first, last = redactor.losses_[0], redactor.losses_[-1]
        click.echo(f"redacted {len(redactor.names_)} name(s), protected {len(redactor.neighbours_)} neighbour "
                   f"name(s), {len(redactor.losses_)} steps in {redactor.seconds_:.1f} s; redaction loss "
                   f"{first['redaction']:.4f} -> {last['redaction']:.4f}, utility loss {last['utility']:.4f}", err=True)
    if not quiet:
        click.echo(f"checkpoint sha256 {applied.record['checkpoint_sha256_before']} -> "
                   f"{applied.record['checkpoint_sha256_after']}", err=True)
    click.echo(str(folder))


@defend.command("perturb")
@with_model
@names_option
@kind_option
@strength_option
@click.option("--side", type=LazyChoice(_sides), default="text", show_default=True,
              help="project: which embeddings lose the names' directions.")
@click_options("seed")
@device_options
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="JSON file for the perturbation (use with `idia attack --perturbation`).")
@quiet_option
@friendly_errors
def perturb(model, checkpoint, names_file, kind, strength, side, seed, device, precision, out, quiet):
    """Fit an inference-time embedding perturbation for the names and save it as JSON."""
    from idia.attack.settings import AttackSettings
    from idia.defense.perturb import make_perturbation
    from idia.defense.redact import read_redaction_names
    AttackSettings(model=model, people=Path("."), seed=seed, device=device, precision=precision).validate()
    if strength is not None and not strength > 0:
        raise InputError(f"--strength must be above 0 (0 turns the defense off), got {strength}")
    names = read_redaction_names(names_file)
    kind = _variant("perturb", kind)
    extra = {"side": side} if kind == "project" else {}
    from idia.attack.encode.encoder import Encoder
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
    from idia.attack.encode.encoder import Encoder
    from idia.compliance.commands.common import settings_from_options
    from idia.defense.redact import read_redaction_names
    from idia.defense.sweep import sweep
    from idia.defense.utility import ZeroShotTask
    attack = settings_from_options(options, model=resolve_model_arg(options["model"]), progress=not quiet)
    attack.check_output(out)
    names = read_redaction_names(names_file)
    kind = _variant("perturb", kind)
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
@click.option("--defense", cls=LazyHelpOption, type=LazyChoice(lambda: _registry().families()), default=None,
              help_text=lambda: f"The defense to verify (default: {_registry().families()[0]}); --tower (redact) or "
                                "--kind (perturb) picks its variant.")
@tower_option
@preset_option
@kind_option
@strength_option
@click.option("--strengths", callback=_strengths, default=None,
              help="perturb: also sweep these comma-separated strengths.")
@utility_option
@utility_prompt_option
@click.option("--steps", type=click.IntRange(1), default=None, help="redact: training steps (default 200).")
@click.option("--neutral", default=None, help="redact: what a redacted name should read as (default 'a person').")
@face_target_option
@click.option("--captions", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="redact: clean captions, one per line (default: the bundled corpus).")
@click.option("--keep-names", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="redact: other people's names the model must keep knowing.")
@registry_option("variants")
@click.option("--unseen-photos/--all-photos", "split", default=None,
              help="Attack only the half of each person's photos the defense never saw (default: with --tower "
                   "image or both).")
@click.option("--probes/--no-probes", default=True, show_default=True,
              help="Also attack with held-out phrasings and with every name variant (first, last, initials), "
                   "whether or not --variants redacts them.")
@click.option("--relearn", "relearn_steps", callback=_int_list, default="25,50,100", show_default=True,
              help="redact: fine-tune the defended model on clean data for these step counts and attack again "
                   "('' for none).")
@click_options("seed")
@runtime_options
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for verification.json, before/, after/ and the defense.")
@quiet_option
@friendly_errors
def verify(names_file, defense, tower, preset, kind, strength, strengths, utility, utility_prompt, steps, neutral,
           face_target, captions, keep_names, variants, split, probes, relearn_steps, out, quiet, **options):
    """Attack, defend, attack again: did the names go, who else went with them, what did utility lose?"""
    from idia.compliance.commands.common import settings_from_options
    from idia.defense.verify import VerifyConfig, write_verification
    from idia.defense.verify import verify as run_verify
    if steps is not None and steps < 1:
        raise InputError(f"--steps must be at least 1, got {steps}")
    attack = settings_from_options(options, model=resolve_model_arg(options["model"]), progress=not quiet)
    attack.check_output(out)
    defense = defense if defense is not None else _registry().families()[0]
    cfg = VerifyConfig(attack=attack, names=names_file, defense=defense, kind=kind, tower=tower, preset=preset,
                       strength=strength, strengths=strengths, utility=utility, utility_prompt=utility_prompt,
                       steps=steps, neutral=neutral, face_target=face_target, captions=captions, keep_names=keep_names,
                       variants=variants, split_photos=split, probes=probes, relearn_steps=relearn_steps, out=out)
    v = run_verify(cfg, warn=warn_printer(quiet))
    path = write_verification(v, out)
    s = v.record["summary"]
    for group in ("redacted", "neighbours", "collateral", "nonmembers"):
        g = s[group]
        if group == "nonmembers" and not g["n"]:
            continue
        recal = g.get("identified_after_recalibrated")
        click.echo(f"{group:>10}: {g['identified_before']}/{g['n']} identified before, "
                   f"{g['identified_after']}/{g['n']} after at the before threshold"
                   + (f" ({recal} recalibrated)" if recal is not None and recal != g["identified_after"] else "")
                   + (f", {g['newly_identified']} newly identified" if g["newly_identified"] else ""))
    if s["utility"]:
        u = s["utility"]
        lo, hi = u["change_ci95"]
        click.echo(f"{'utility':>10}: zero-shot top-1 {u['top1_before']:.3f} -> {u['top1_after']:.3f} "
                   f"(change {u['change']:+.3f}, 95% CI {lo:+.3f} to {hi:+.3f})")
    for row in (v.record["probes"] or {}).get("rows", []):
        r = row["redacted"]
        click.echo(f"probe {row['probe']}: redacted {r['identified_before']}/{r['n']} -> {r['identified_after']}/"
                   f"{r['n']}, others {row['others']['identified_before']} -> {row['others']['identified_after']} "
                   f"of {row['others']['n']}")
    for row in (v.record["relearning"] or {}).get("rows", []):
        click.echo(f"relearnt {row['steps']} steps: {row['redacted_identified']} redacted identified, "
                   f"{len(row['came_back'])} came back")
    if v.sweep is not None:
        click.echo(v.sweep.table())
        for line in v.sweep.warnings:
            click.echo(f"warning: {line}")
    for row in v.record["probes_not_run"]:
        click.echo(f"not run: {row['probe']} ({row['why']})")
    click.echo(f"verdict: {v.record['verdict']['text']}")
    click.echo(str(path))
