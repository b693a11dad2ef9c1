"""`idia check`: is this report's PDF the one idia made from the record it carries?

  signature    every signature intact, valid and covering the whole file; trusted against the --trust roots
               only (`signing.signature_findings`; an unsigned report is said to be unsigned)
  attachments  each file the PDF carries has the SHA-256 page 1 prints for it, and page 1 prints no file the
               PDF does not carry; the record (or extract) is among them; the tables derived from it (an
               audit's persons.csv and photos.csv) are the ones it gives
  link         page 1's document ID is the whole record's SHA-256: the carried record's own, or the one an
               extract names (`extracts.unwrap`)
  page 1       the figures page 1 shows, recomputed from the carried record by the report kind's own `facts`
               (the function the template's figures came from) and found in page 1's text

Everything is read from the PDF's bytes: nothing is fetched, nothing outside the file is trusted but the roots
given. pypdf reads the attachments and the text; pyHanko the signatures (both imported when a check runs).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass, field

from idia.compliance.report import extracts
from idia.compliance.report.facts import missing_facts, squeezed
from idia.compliance.report.kinds import REPORT_KINDS, kind_of_carried
from idia.compliance.report.signing import signature_findings

DOCID = re.compile(r"Document\s*ID\s*([0-9a-f]{64})")
PRINTED_FILE = re.compile(r"\.(?:csv|json)([0-9a-f]{64})")
SIGNED_BY = squeezed("Signed (PAdES, SHA-256) by")  # _signature.html's words


@dataclass
class Checked:
    """The check's outcome: `notes` (what was found in order), `problems` (each one line), and what was read."""

    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    kind: str | None = None
    record: dict | None = None  # the carried record, unwrapped
    whole_sha256: str | None = None
    attachments: dict[str, bytes] = field(default_factory=dict)

    @property
    def intact(self) -> bool:
        return not self.problems


@dataclass
class PdfParts:
    page_one: str
    attachments: dict[str, bytes]
    off_page: tuple[str, ...] = ()  # page 1's text placed beyond the page's edges: in the file, unseen


def read_parts(pdf: bytes) -> PdfParts:
    """Page 1's text (and the pieces of it that lie off the page) and the attached files (name → bytes), by
    pypdf."""
    from pypdf import PdfReader
    reader = PdfReader(io.BytesIO(pdf), strict=False)
    files = {name: bodies[0] for name, bodies in reader.attachments.items() if bodies}
    if not reader.pages:
        return PdfParts("", files)
    page = reader.pages[0]
    box = page.mediabox
    left, bottom, right, top = float(box.left), float(box.bottom), float(box.right), float(box.top)
    off = []

    def visit(text, cm, tm, font, size):  # where the text starts: its matrix times the page's
        x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
        y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
        if text.strip() and not (left <= x < right and bottom <= y <= top):
            off.append(text.strip())
    return PdfParts(page.extract_text(visitor_text=visit), files, tuple(off))


def check_report(pdf: bytes, trust_roots: list = ()) -> Checked:
    """Every check in the module's docstring, on the PDF's bytes."""
    out = Checked()
    sig = signature_findings(pdf, list(trust_roots))
    out.notes += sig.notes
    out.problems += sig.problems
    try:
        parts = read_parts(pdf)
    except Exception as e:  # noqa: BLE001 -- pypdf raises many types on a damaged file
        out.problems.append(f"the PDF cannot be read ({type(e).__name__}: {e})")
        return out
    out.attachments = parts.attachments
    _check_signature_block(parts, sig, out)
    _check_attachments(parts, out)
    record = _carried_record(parts, out)
    if record is None:
        return out
    _check_link(parts, record, out)
    _check_tables(parts, out)
    _check_facts(parts, out)
    return out


def _check_signature_block(parts: PdfParts, sig, out: Checked) -> None:
    """Page 1's signature block says what the signatures are: signed by their signer, or not signed."""
    from idia.compliance.report.templating import visible_text
    page = squeezed(parts.page_one)
    claims = SIGNED_BY in page
    if claims and not sig.signed:
        out.problems.append("page 1 says the report is signed, but the PDF carries no signature")
    for who in sig.signers or []:
        if SIGNED_BY + squeezed(visible_text(who)) not in page:
            out.problems.append(f"page 1's signature block does not name the signer, {who}")


def _check_attachments(parts: PdfParts, out: Checked) -> None:
    from idia.compliance.report.templating import visible_text
    page = squeezed(parts.page_one)
    carried, problems = {}, []
    for name, body in parts.attachments.items():
        digest = hashlib.sha256(body).hexdigest()
        carried[digest] = name
        if squeezed(visible_text(name)) + digest not in page:
            problems.append(f"attachment {name}: its SHA-256 {digest} is not the one page 1 prints for it")
    for printed in PRINTED_FILE.findall(page):
        if printed not in carried:
            problems.append(f"page 1 lists a file with SHA-256 {printed} that the PDF does not carry")
    out.problems += problems
    if parts.attachments and not problems:
        out.notes.append(f"{len(parts.attachments)} attached files match the SHA-256 page 1 prints")


def _carried_record(parts: PdfParts, out: Checked) -> dict | None:
    """The idia record (or extract) among the attachments, identified by its `kind`."""
    for name, body in parts.attachments.items():
        if not name.lower().endswith(".json"):
            continue
        try:
            record = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        kind = kind_of_carried(record) if isinstance(record, dict) else None
        if kind in REPORT_KINDS:
            out.kind = kind
            out.record, source = extracts.unwrap(record)
            out.whole_sha256 = source or hashlib.sha256(body).hexdigest()
            article = "an" if kind[0] in "aeiou" else "a"
            out.notes.append(f"{article} {kind} report carrying {name}"
                             + (" (an extract of the whole record)" if source else " (the whole record)"))
            return record
    out.problems.append("the PDF carries no idia record, so nothing on its pages can be checked against one")
    return None


def _check_link(parts: PdfParts, record: dict, out: Checked) -> None:
    found = DOCID.search(squeezed(parts.page_one))
    if not found:
        out.problems.append("page 1 prints no document ID")
    elif found.group(1) != out.whole_sha256:
        out.problems.append(f"page 1's document ID {found.group(1)} is not the SHA-256 of the record the PDF "
                            f"carries ({out.whole_sha256})")


def _check_tables(parts: PdfParts, out: Checked) -> None:
    """An audit's persons.csv and photos.csv are the ones its carried record gives."""
    if out.kind != "audit":
        return
    from idia.compliance.report.kinds import audit
    from idia.compliance.report.people import person_summary
    try:
        expected = {"persons.csv": audit.persons_csv(person_summary(p) for p in out.record["persons"])}
        images = out.record["manifest"]["inputs"].get("images", [])
        if isinstance(images, list):
            expected["photos.csv"] = audit.photos_csv(images)
    except (KeyError, TypeError) as e:
        out.problems.append(f"the carried record is malformed ({type(e).__name__}: {e})")
        return
    for name, body in expected.items():
        if parts.attachments.get(name) != body:
            out.problems.append(f"{name} is not the table the carried record gives")
    if isinstance(images, dict):
        got = parts.attachments.get("photos.csv")
        if got is None or extracts.photos_digest(got) != images.get("sha256"):
            out.problems.append("photos.csv is not the photo list the carried record names by its SHA-256")


def _check_facts(parts: PdfParts, out: Checked) -> None:
    try:
        facts = REPORT_KINDS.get(out.kind).facts(out.record)
    except (KeyError, TypeError, IndexError, AttributeError) as e:
        out.problems.append(f"the carried record is malformed for a {out.kind} report ({type(e).__name__}: {e})")
        return
    missing = missing_facts(facts, parts.page_one)
    for f in missing:
        out.problems.append(f"page 1 does not show what the carried record gives for {f.key}: {f.text!r}")
    if parts.off_page:
        out.problems.append(f"page 1 places text beyond the page's edge, where no reader sees it: "
                            f"{' '.join(parts.off_page)[:200]!r}")
    elif not missing:
        out.notes.append(f"page 1's {len(facts)} figures match the carried record")
