"""`idia report`: render a results.json or verification.json as takedown evidence, a GDPR audit or a mitigation
verification, optionally signed. Thin: options in, `compliance.report.write_report` out. The kinds are the report
registry's, read when the command line is checked or its help printed."""

from __future__ import annotations

from pathlib import Path

import click

from idia.compliance.commands.common import LazyChoice, fail, friendly_errors


def _kinds() -> tuple[str, ...]:
    from idia.compliance.report import REPORT_KINDS
    return REPORT_KINDS.names()


def signer_for(key: Path | None, tsa: str | None):
    """The signer for --sign KEY.p12 (and --tsa URL), or None without --sign."""
    if key is None:
        if tsa is not None:
            fail("--tsa timestamps a signature: give --sign KEY.p12 too")
        return None
    from idia.compliance.report.signing import load_signer, read_passphrase
    return load_signer(key, read_passphrase(key), tsa)


sign_options = [
    click.option("--sign", "sign_key", type=click.Path(dir_okay=False, path_type=Path), default=None,
                 help="Sign the PDF (PAdES) with the key and certificate in this PKCS#12 file; page 1 names the "
                      "signer. The passphrase is read from IDIA_SIGN_PASSPHRASE, else asked for."),
    click.option("--tsa", default=None, metavar="URL",
                 help="With --sign: an RFC 3161 time-stamping authority that dates the signature."),
    click.option("--auditor", type=click.Path(dir_okay=False, path_type=Path), default=None,
                 help="YAML file saying who ran the audit: name, organisation, on_behalf_of, independence (a "
                      "statement); shown on page 1."),
]


def with_sign_options(fn):
    for option in reversed(sign_options):
        fn = option(fn)
    return fn


@click.command("report")
@click.argument("record", type=click.Path(path_type=Path))
@click.option("--kind", type=LazyChoice(_kinds), required=True,
              help="takedown: one person, for a lawyer (needs --person). audit: every audited person, for a "
                   "data-protection officer. mitigation: a verification.json from `idia verify`, for an ML team.")
@click.option("--person", default=None, help="The person a takedown report is about, as named in the record.")
@click.option("--include-photos", is_flag=True,
              help="Embed small thumbnails of the person's photos (takedown only). Off by default: faces are "
                   "biometric data.")
@click.option("--show-names", is_flag=True,
              help="Mitigation only: name the people (default: pseudonymous IDs, in the pages and the attached "
                   "record).")
@with_sign_options
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the report as one self-contained HTML file.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The report: PDF, or HTML when the name ends in .html.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the paths written (errors still print).")
@friendly_errors
def report(record, kind, person, include_photos, show_names, sign_key, tsa, auditor, html_out, out, quiet):
    """Render an attack's RECORD (results.json) or a verification record as an evidence report."""
    from idia.compliance.config import load_auditor
    from idia.compliance.report import write_report
    who = load_auditor(auditor) if auditor is not None else None
    signer = signer_for(sign_key, tsa)
    try:
        written = write_report(record, kind, out, person=person, include_photos=include_photos, html_out=html_out,
                               auditor=who, signer=signer, show_names=show_names)
    except OSError as e:  # the output cannot be written (a folder that is a file, no permission, disk full)
        where = f" ({e.filename})" if e.filename and str(e.filename) != str(out) else ""
        fail(f"cannot write {out}: {e.strerror or e}{where}")
    if not quiet:
        click.echo(f"{kind} report of {record} written" + (f", signed by {signer.block.name}" if signer else ""),
                   err=True)
    for path in written:
        click.echo(str(path))
