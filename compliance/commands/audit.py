"""`idia audit` (a whole audit from one YAML file, resumable) and `idia demo` (the same on the synthetic world)."""

from __future__ import annotations

from pathlib import Path

import click

from idia.compliance.commands.common import (
    friendly_errors,
    quiet_option,
    warn_printer,
)


@click.command()
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


@click.command()
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
