"""Report kinds: one module each, registered with `@register`; adding a kind is adding a module here (and its
template, `templates/<name>.html`).

  takedown    one person, for a lawyer: the verdict, the model's answers, the statistic in plain words, limits
  audit       every audited person, for a data-protection officer: findings, distributions, ROC, the identified
              people; the complete tables and the record ride inside the PDF as attachments
  mitigation  a defense's `idia verify` record, for an ML team: identification and utility before and after

A kind names its title, the record it renders (`schema.RecordKind`) and builds its template's context from the
record: it words and selects what the record holds, and computes no statistic. It also says what its PDF carries
(`carry`: the record, or an extract of it, and the tables) and which figures its first page shows (`facts`,
computed from the carried record: the template renders them and `idia check` recomputes them). Everything that
lists the kinds (the YAML audit's `reports:`, `idia report --kind`, the errors) reads `REPORT_KINDS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from idia.compliance.report.attachments import ATTACH_RECORD_MAX_BYTES, Attachment
from idia.compliance.report.extracts import EXTRACT_KIND
from idia.compliance.report.facts import Fact
from idia.compliance.report.frame import Auditor, SignatureBlock
from idia.compliance.report.schema import RecordKind
from idia.registry import Registry


@dataclass(frozen=True)
class Request:
    """What a report is asked for beside its record: the record's bytes and file name, and the options (the
    auditor and the signer are shown on page 1; `show_names`: a mitigation names people instead of IDs)."""

    raw: bytes
    source_name: str
    person: str | None = None
    include_photos: bool = False
    record_limit: int = ATTACH_RECORD_MAX_BYTES
    auditor: Auditor | None = None
    signature: SignatureBlock | None = None
    show_names: bool = False


@dataclass(frozen=True)
class ReportKind:
    """A kind of report: its name (and template, `<name>.html`), title, the record it renders, and
      build(record, request) -> (context, extra attachments)   its template's context
      carry(record, request) -> (attachments, carried record)  the files its PDF carries, one of them the record
                                                               (relationship "Source"), and that record parsed
      facts(carried record) -> [Fact]                          the figures page 1 shows (see `facts`)
    `about_one_person`: it takes --person (and --include-photos)."""

    name: str
    title: str
    reads: RecordKind
    build: Callable[[dict, Request], tuple[dict, list[Attachment]]]
    carry: Callable[[dict, Request], tuple[list[Attachment], dict]]
    facts: Callable[[dict], list[Fact]]
    about_one_person: bool = False

    @property
    def template(self) -> str:
        return f"{self.name}.html"


REPORT_KINDS: Registry[ReportKind] = Registry("report kind", package=__name__)
register = REPORT_KINDS.register


def kind_of_carried(record: dict) -> str | None:
    """The report kind whose PDF carries `record` (a whole record, or an extract naming its report)."""
    if record.get("kind") == EXTRACT_KIND:
        return record.get("report")
    return next((k.name for k in REPORT_KINDS if not k.about_one_person and k.reads.kind == record.get("kind")), None)


def one_person_kinds() -> str:
    """The kinds about one person, as words for an error ("takedown")."""
    return " and ".join(k.name for k in REPORT_KINDS if k.about_one_person)
