"""`idia check REPORT.pdf`: is this report intact, and does it show what its attached record gives? With
`--rerun`, does the attack, run again, give the same record? Thin: `compliance.report.check` and
`compliance.report.rerun` do the work. Exit 0 when intact, 1 with one line per problem, 2 on bad input."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from idia.compliance.commands.common import friendly_errors


@click.command("check")
@click.argument("pdf", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--trust", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A CA certificate (PEM or DER) the signer's chain must reach; repeat for several. Without it "
                   "the signature is checked intact and whole but its trust is not judged (no system store is "
                   "ever read).")
@click.option("--rerun", is_flag=True,
              help="Run the attack again from the attached manifest, on the same model and photos (checked by "
                   "their SHA-256), and list every difference from the attached record.")
@click.option("--model", default=None, help="With --rerun: the model, where it is now (checked by its SHA-256).")
@click.option("--people", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="With --rerun: the audited people's photo folders, where they are now.")
@click.option("--reference", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="With --rerun: the reference people's photo folders, where they are now.")
@click.option("--labels", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --rerun: the ground-truth labels file, where it is now.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the problems.")
@friendly_errors
def check(pdf, trust, rerun, model, people, reference, labels, quiet):
    """Check REPORT.pdf: its signature, its attachments against their printed SHA-256, and page 1's figures
    against the attached record; with --rerun, the attack itself."""
    from idia.compliance.report.check import check_report
    from idia.compliance.report.signing import load_trust_roots
    from idia.io import read_regular_bytes
    if not rerun and any(x is not None for x in (model, people, reference, labels)):
        from idia.compliance.commands.common import fail
        fail("--model, --people, --reference and --labels locate a rerun's inputs: give --rerun too")
    data = read_regular_bytes(pdf, what="PDF report", missing="no such file")
    result = check_report(data, load_trust_roots(trust))
    if rerun and result.record is not None:
        from idia.compliance.commands.common import resolve_model_arg
        from idia.compliance.report.rerun import compare, identical_note, rerun_record
        new = rerun_record(result, model=resolve_model_arg(model) if model else None, people=people,
                           reference=reference, labels=labels, progress=not quiet)
        differences = compare(result, new)
        result.notes += [] if differences else [identical_note(result)]
        result.problems += [f"rerun: {d}" for d in differences]
    for line in ([] if quiet else [f"ok: {n}" for n in result.notes]) + [f"problem: {p}" for p in result.problems]:
        click.echo(f"{pdf}: {line}")
    if result.problems:
        click.echo(f"{pdf}: {len(result.problems)} problem{'s' if len(result.problems) != 1 else ''}", err=True)
        sys.exit(1)
    click.echo(f"{pdf}: intact" + ("; the rerun is identical" if rerun else ""))
