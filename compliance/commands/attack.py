"""`idia attack`: the Identity Inference Attack on people's photos, to results.json and scores.csv."""

from __future__ import annotations

from pathlib import Path

import click

from idia.compliance.commands.common import (
    click_options,
    friendly_errors,
    quiet_option,
    resolve_model_arg,
    warn_printer,
)


@click.command()
@click_options("model", "checkpoint", "people", "reference", "candidates", "n_candidates", "candidate_set",
               "distractors", "distractor_draw", "attributes", "aliases", "occurrences", "prompts", "rule", "alpha", "tau", "target_fpr", "labels", "max_images")
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
    from idia.compliance.commands.common import settings_from_options
    settings = settings_from_options(options, model=resolve_model_arg(options["model"]), progress=not quiet)
    settings.check_output(out)
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
