"""Report kinds: one module each, registered with `@register`; adding a kind is adding a module here (and its
template, `templates/<name>.html`).

  takedown    one person, for a lawyer: the verdict, the model's answers, the statistic in plain words, limits
  audit       every audited person, for a data-protection officer: findings, distributions, ROC, the identified
              people; the complete tables and the record ride inside the PDF as attachments
  mitigation  a defense's `idia verify` record, for an ML team: identification and utility before and after

A kind names its title, the record it renders (`schema.RecordKind`) and builds its template's context from the
record: it words and selects what the record holds, and computes no statistic. Everything that lists the kinds
(the YAML audit's `reports:`, `idia report --kind`, the errors) reads `REPORT_KINDS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from idia.compliance.report.attachments import ATTACH_RECORD_MAX_BYTES, Attachment
from idia.compliance.report.schema import RecordKind
from idia.registry import Registry


@dataclass(frozen=True)
class Request:
    """What a report is asked for beside its record: the record's bytes and file name, and the options."""

    raw: bytes
    source_name: str
    person: str | None = None
    include_photos: bool = False
    record_limit: int = ATTACH_RECORD_MAX_BYTES


@dataclass(frozen=True)
class ReportKind:
    """A kind of report: its name (and template, `<name>.html`), title, the record it renders, and its context
    builder, `build(record, request) -> (context, attachments)`. `about_one_person`: it takes --person (and
    --include-photos)."""

    name: str
    title: str
    reads: RecordKind
    build: Callable[[dict, Request], tuple[dict, list[Attachment]]]
    about_one_person: bool = False

    @property
    def template(self) -> str:
        return f"{self.name}.html"


REPORT_KINDS: Registry[ReportKind] = Registry("report kind", package=__name__)
register = REPORT_KINDS.register


def one_person_kinds() -> str:
    """The kinds about one person, as words for an error ("takedown")."""
    return " and ".join(k.name for k in REPORT_KINDS if k.about_one_person)
