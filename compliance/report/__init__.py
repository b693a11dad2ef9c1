"""Evidence reports: a `results.json` (or `verification.json`) rendered as HTML and PDF, and nothing more.

The JSON is the record; a report is a rendering of it. Templates format, round and word the numbers the record
holds and never compute a statistic of their own; the only arithmetic here is tallying verdicts the report also
lists, and the figures draw numbers the record holds. The kinds (takedown, audit, mitigation) are in `kinds/`.

  schema       reading a record: its bytes, kind, schema version and field types (derived from the dataclasses)
  people       the per-person record, read there and nowhere else
  kinds/       one module per report kind: its title, the record it reads, its template's context
  attachments  the files an audit's PDF carries (persons.csv, photos.csv, the record)
  templating   the jinja environment and filters
  document     render, render_html, render_pdf, write_report
  plots, photos, fetcher   the figures, the thumbnails (on request), the PDF engine's data:-only URL fetcher

Safety: names and paths come from users' files. Every template is autoescaped, undefined fields raise, only
the package's own templates are ever rendered, and the PDF engine gets a fetcher that loads only `data:` URIs,
so no local file, network address or attachment can be pulled into a report. The audit's attachments are bytes
idia made itself, handed to the PDF engine directly (never a URL).

Scale: everything is one pass over the people (or a heap for the top of the list); a takedown indexes the names
once.

Importing this package is cheap: weasyprint is imported only to write a PDF, matplotlib only to draw a figure.
"""

from idia.compliance.report.document import Rendered, render, render_html, render_pdf, write_report
from idia.compliance.report.kinds import REPORT_KINDS
from idia.compliance.report.schema import load_record

__all__ = ["REPORT_KINDS", "Rendered", "load_record", "render", "render_html", "render_pdf", "write_report"]
