"""A report as a document: a record rendered to one self-contained HTML page, to PDF, and written to disk.

`render` checks the record against the kind's schema, asks the kind for its template's context and renders it;
`render_pdf` hands the HTML to weasyprint (imported there, and only there) with the data:-only URL fetcher
(`fetcher.DataOnlyURLFetcher`) and the kind's attachments as bytes; `write_report` does both for a file.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2
from markupsafe import Markup

from idia.compliance.report.attachments import ATTACH_RECORD_MAX_BYTES, Attachment
from idia.compliance.report.kinds import REPORT_KINDS, Request, one_person_kinds
from idia.compliance.report.schema import check_record, load_record
from idia.compliance.report.templating import environment, stylesheet
from idia.errors import InputError
from idia.io import atomic_write_bytes, atomic_write_text
from idia.manifest import utc_now

if TYPE_CHECKING:
    from idia.compliance.report.fetcher import DataOnlyURLFetcher


@dataclass
class Rendered:
    """A report: its HTML, and the files to attach to its PDF."""

    html: str
    attachments: list[Attachment] = field(default_factory=list)


def _generated_utc() -> str:
    """Now, or SOURCE_DATE_EPOCH when set (reproducible builds of the same report)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), timezone.utc).isoformat().replace("+00:00", "Z")
    return utc_now()


def _serialised(data: dict) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def render(kind: str, data: dict, person: str | None = None, include_photos: bool = False,
           raw: bytes | None = None, source_name: str = "results.json", generated_utc: str | None = None,
           record_limit: int = ATTACH_RECORD_MAX_BYTES, document_id: str | None = None,
           folder: str | Path | None = None) -> Rendered:
    """The report as one self-contained HTML page (CSS inline, figures and photos as data: URIs), and for an
    audit the files its PDF carries (persons.csv, photos.csv and the record, each SHA-256 printed in the page).

    `raw` is the input file's bytes (the document ID is their SHA-256 unless `document_id` is given); without it,
    the record serialised the way idia writes it (which is those bytes for an unedited record). `folder` is where
    the record lies: the files it links are checked against their recorded SHA-256 (a record only in memory is
    checked on its own)."""
    report = REPORT_KINDS.get(kind)
    check_record(data, report.reads, report.name, folder)
    if person is not None and not report.about_one_person:
        raise InputError(f"--person applies to {one_person_kinds()} reports only")
    if include_photos and not report.about_one_person:
        raise InputError(f"--include-photos applies to {one_person_kinds()} reports only")
    if raw is None:
        raw = _serialised(data)
    context = {"kind": report.name, "title": report.title, "css": Markup(stylesheet()),
               "document_id": document_id or hashlib.sha256(raw).hexdigest(), "source_name": source_name,
               "generated_utc": generated_utc or _generated_utc(), "data": data,
               "manifest": data["manifest"], "attachments": []}
    request = Request(raw, source_name, person=person, include_photos=include_photos, record_limit=record_limit)
    try:
        more, files = report.build(data, request)
        context.update(more)
        return Rendered(environment().get_template(report.template).render(context), files)
    except jinja2.UndefinedError as e:
        raise InputError(f"the record lacks a field the {kind} report needs ({e.message})") from None
    except (KeyError, TypeError, AttributeError) as e:
        raise InputError(f"the record is malformed for a {kind} report ({type(e).__name__}: {e})") from None


def render_html(kind: str, data: dict, person: str | None = None, include_photos: bool = False,
                document_id: str | None = None, source_name: str = "results.json",
                generated_utc: str | None = None) -> str:
    """The report's HTML alone (see `render`). `document_id`, when given, replaces the computed one."""
    return render(kind, data, person=person, include_photos=include_photos, source_name=source_name,
                  generated_utc=generated_utc, document_id=document_id).html


def _pdf_time(generated_utc: str | None) -> datetime:
    """The attachments' dates: the report's own generation time, so SOURCE_DATE_EPOCH makes them reproducible."""
    stamp = generated_utc or _generated_utc()
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(timezone.utc).replace(tzinfo=None)


def render_pdf(html: str, url_fetcher: DataOnlyURLFetcher | None = None,
               attachments: list[Attachment] | tuple = (), generated_utc: str | None = None) -> bytes:
    """The PDF of a report's HTML, with `attachments` embedded as files.

    Loads nothing but data: URIs; pass a fetcher to inspect what was asked for. Attachments are given to
    weasyprint as bytes (`string=`), so no URL, and no fetcher, is involved in carrying them."""
    from weasyprint import HTML  # imported here: a second or two, only PDFs need it
    from weasyprint import Attachment as PdfAttachment

    from idia.compliance.report.fetcher import DataOnlyURLFetcher
    fetcher = url_fetcher if url_fetcher is not None else DataOnlyURLFetcher()
    when = _pdf_time(generated_utc) if attachments else None
    files = [PdfAttachment(string=a.data, name=a.name, description=a.description, created=when, modified=when,
                           relationship=a.relationship, url_fetcher=fetcher) for a in attachments]
    return HTML(string=html, base_url=None, url_fetcher=fetcher).write_pdf(attachments=files or None)


def write_report(input_path: str | Path, kind: str, out: str | Path, person: str | None = None,
                 include_photos: bool = False, html_out: str | Path | None = None,
                 record_limit: int = ATTACH_RECORD_MAX_BYTES) -> list[Path]:
    """Render the record at `input_path` to `out` (PDF, or HTML when it ends in .html) and `html_out`.

    An audit PDF carries persons.csv, photos.csv and the record (up to `record_limit` bytes) inside it; the
    HTML names them and their SHA-256. Each file is written atomically. Returns the paths written."""
    input_path, out = Path(input_path), Path(out)
    data, raw = load_record(input_path)
    generated = _generated_utc()
    try:
        rendered = render(kind, data, person=person, include_photos=include_photos, raw=raw,
                          source_name=input_path.name, generated_utc=generated, record_limit=record_limit,
                          folder=input_path.parent)
    except InputError as e:
        raise InputError(f"{input_path}: {e}") from None
    del data
    written = []
    if html_out is not None:
        written.append(atomic_write_text(html_out, rendered.html))
    if out.suffix.lower() in (".html", ".htm"):
        written.append(atomic_write_text(out, rendered.html))
    else:
        written.append(atomic_write_bytes(out, render_pdf(rendered.html, attachments=rendered.attachments,
                                                          generated_utc=generated)))
    return written
