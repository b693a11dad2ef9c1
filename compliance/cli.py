"""The `idia` command line. Thin: each command parses options and calls a library function tests call too.

Bad input ends in one line on stderr naming the file and the problem, and exit status 2.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from idia.attack.settings import click_options
from idia.compliance.commands.common import friendly_errors, quiet_option, resolve_model_arg, warn_printer
from idia.errors import InputError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="idia", prog_name="idia")
def main():
    """idia: does this CLIP model know this person's face and name?

    Identity inference audits of open_clip models (attack), defenses that make a model forget names (defend,
    verify), and evidence reports (report, audit). `idia demo` runs all of it on the synthetic world."""
    warnings.filterwarnings("ignore", message=".*QuickGELU.*")


# --- world ---------------------------------------------------------------------------------------------------

@main.group()
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

    On the CPU in fp32 (the default) the shipped checkpoint is reproduced byte for byte."""
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

# --- attack --------------------------------------------------------------------------------------------------

@main.command()
@click_options("model", "checkpoint", "people", "reference", "candidates", "n_candidates", "candidate_set",
               "distractors", "distractor_draw", "attributes", "aliases", "prompts", "rule", "alpha", "tau", "target_fpr", "labels", "max_images")
@click.option("--perturbation", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Run through an inference-time defense saved by `idia defend perturb`.")
@click_options("seed", "device", "precision", "workers", "fast_decode", "batch_size", "cache_dir",
               "engine", "ray_address")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for results.json and scores.csv (scores.csv.gz for large audits).")
@quiet_option
@friendly_errors
def attack(perturbation, out, quiet, **options):
    """Run the Identity Inference Attack (Hintersdorf et al., JAIR 2024) on people's photos."""
    from idia.attack.run import run_attack, write_attack
    from idia.attack.settings import from_options
    settings = from_options(options, model=resolve_model_arg(options["model"]), progress=not quiet)
    pert = None
    if perturbation is not None:
        from idia.defense.perturb import load_perturbation
        pert = load_perturbation(perturbation)
    from idia.io import output_lock
    with output_lock(out):  # a second run into the same --out stops with one line instead of mixing files
        run = run_attack(settings, perturbation=pert, warn=warn_printer(quiet))
        path = write_attack(run, out)
    if not quiet:
        _print_summary(run.result)
    click.echo(str(path))


def _print_summary(result) -> None:
    flagged = sum(p.member for p in result.persons)
    click.echo(f"{len(result.persons)} people audited, {flagged} identified "
               f"({result.rule['explanation']})", err=True)
    if result.metrics:
        m = result.metrics
        line = f"against labels: TPR {m['tpr']:.3f} FPR {m['fpr']:.3f} accuracy {m['accuracy']:.3f}"
        if m.get("roc"):
            line += f" AUC {m['roc']['auc']:.3f}"
        click.echo(line, err=True)




# --- audit and demo ------------------------------------------------------------------------------------------

@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@quiet_option
@friendly_errors
def audit(config, quiet):
    """Run the whole audit a YAML CONFIG describes (attack, defenses, reports); resumes if interrupted."""
    from idia.compliance.config import load_config
    from idia.compliance.pipeline import run_audit
    cfg = load_config(config)
    outcome = run_audit(cfg, progress=not quiet, warn=warn_printer(quiet),
                        say=None if quiet else lambda m: click.echo(f"idia: {m}", err=True))
    _print_outcome(outcome)


@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-output"),
              show_default=True, help="Folder for the photos, the config, the results and the reports.")
@quiet_option
@friendly_errors
def demo(out, quiet):
    """Audit the synthetic world end to end: photos, attack, redaction of a few members, verification, and the
    three reports (GDPR audit, takedown evidence, mitigation verification)."""
    import time

    from idia.compliance.config import load_config
    from idia.compliance.pipeline import run_audit, write_demo_config
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    config = write_demo_config(out)
    outcome = run_audit(load_config(config), progress=not quiet, warn=warn_printer(quiet),
                        say=None if quiet else lambda m: click.echo(f"idia: {m}", err=True),
                        command=f"idia audit {config}")
    _print_outcome(outcome)
    click.echo(f"demo finished in {time.perf_counter() - t0:.0f} s; config: {config}")


def _print_outcome(outcome) -> None:
    click.echo(f"attack results: {outcome.attack}")
    for v in outcome.verifications:
        click.echo(f"verification:   {v}")
    for r in outcome.reports:
        click.echo(f"report:         {r}")
    if outcome.resumed:
        click.echo(f"(resumed: {', '.join(outcome.resumed)} already done)")


# --- commands that live in compliance/commands/ ------------------------------------------------------------

from idia.compliance.commands.convert import convert as _convert  # noqa: E402
from idia.compliance.commands.defend import defend as _defend  # noqa: E402
from idia.compliance.commands.defend import verify as _verify
from idia.compliance.commands.report import report as _report  # noqa: E402

for _command in (_defend, _verify, _report, _convert):
    main.add_command(_command)


if __name__ == "__main__":
    main()
