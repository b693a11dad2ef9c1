"""Evidence reports: a `results.json` (or `verification.json`) rendered as HTML and PDF, and nothing more.

The JSON is the record; a report is a rendering of it. Templates format, round and word the numbers the record
holds and never compute a statistic of their own; the only arithmetic here is tallying verdicts the report also
lists, and the figures draw numbers the record holds. Three kinds:

  takedown    one person, for a lawyer: the verdict, the model's answers, the statistic in plain words, limits
  audit       every audited person, for a data-protection officer: findings, distributions, ROC, the identified
              people; the complete per-person table (persons.csv), the photos' hashes (photos.csv) and the
              record itself ride inside the PDF as attachments, so its pages stay bounded at any number of people
  mitigation  a defense's `idia verify` record, for an ML team: identification and utility before and after

Safety: names and paths come from users' files. Every template is autoescaped, undefined fields raise, only
the package's own templates are ever rendered, and the PDF engine gets a fetcher that loads only `data:` URIs
(`compliance.fetcher`), so no local file, network address or attachment can be pulled into a report. The
audit's attachments are bytes idia made itself, handed to the PDF engine directly (never a URL).

Scale: everything here is one pass over the people (or a heap for the top of the list); a takedown indexes the
names once. Per-person fields are read only by `person_summary` and `person_detail`, so a new per-person
layout in the record is a local edit there.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import heapq
import io
import json
import os
import shlex
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from importlib.resources import files
from pathlib import Path

import jinja2
from markupsafe import Markup

from idia.attack.record.results import KIND_ATTACK, SCHEMA_VERSION, AttackResult
from idia.compliance import plots
from idia.compliance.fetcher import DataOnlyURLFetcher
from idia.compliance.photos import thumbnail
from idia.errors import InputError
from idia.io import atomic_write_bytes, atomic_write_text, read_regular_bytes
from idia.manifest import utc_now
from idia.names import name_key, normalize_name

KIND_VERIFICATION = "idia-verification"
VERIFICATION_SCHEMA_VERSION = 2
VERIFICATION_SCHEMAS = (1, 2)  # 2 adds photos, probes and relearning (each may be null); 1 renders without them
REPORT_KINDS = ("takedown", "audit", "mitigation")
TITLES = {"takedown": "Takedown evidence", "audit": "GDPR audit of a CLIP model",
          "mitigation": "Mitigation verification"}
NEEDS = {"takedown": KIND_ATTACK, "audit": KIND_ATTACK, "mitigation": KIND_VERIFICATION}
MAKER = {KIND_ATTACK: "a results.json from `idia attack`", KIND_VERIFICATION: "a verification.json from `idia verify`"}
VERIFICATION_KEYS = ("manifest", "defense", "redacted", "neighbours", "collateral", "summary")
TEMPLATES = ("base.html", "takedown.html", "audit.html", "mitigation.html",
             "_evidence_takedown.html", "_evidence_audit.html", "_study.html")  # partials: {% include %}d
# Characters that reorder or hide text (bidi controls) or are not text at all: shown as [U+XXXX], so a name
# such as "\u202eevil" cannot make the report read differently from what the record holds.
_BIDI_CONTROLS = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


# --- loading and checking the record -------------------------------------------------------------------------

def load_record(path: str | Path) -> tuple[dict, bytes]:
    """The JSON record and its exact bytes (the report's document ID is their SHA-256)."""
    path = Path(path)
    raw = read_regular_bytes(path, what="JSON record", missing="no such file")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not a JSON record ({e})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: not an idia record (a JSON object was expected)")
    return data, raw


def check_record(kind: str, data: dict) -> None:
    """That the record is the kind this report renders, in a schema version it knows."""
    if kind not in REPORT_KINDS:
        raise InputError(f"unknown report kind {kind!r}; choose one of {', '.join(REPORT_KINDS)}")
    found, needed = data.get("kind"), NEEDS[kind]
    if found != needed:
        what = f"is {MAKER[found]}" if found in MAKER else f"is not an idia record (kind={found!r})"
        raise InputError(f"{what}; a {kind} report needs {MAKER[needed]}")
    if needed == KIND_ATTACK:
        if data.get("schema_version") == SCHEMA_VERSION:  # another version is named as such by from_dict
            check_fields(data, ATTACK_FIELDS, "")
        # Schema version and top-level field names (raises InputError); the people's field types were checked
        # just above, without building 10^5 typed objects only to check them.
        try:
            AttackResult.from_dict({**data, "persons": [], "reference": []})
        except TypeError as e:
            raise InputError(f"not a valid attack record ({e})") from None
        return
    if data.get("schema_version") not in VERIFICATION_SCHEMAS:
        raise InputError(f"verification schema version {data.get('schema_version')!r} is not one of "
                         f"{', '.join(map(str, VERIFICATION_SCHEMAS))}")
    missing = [k for k in VERIFICATION_KEYS if k not in data]
    if missing:
        raise InputError(f"the verification record lacks {', '.join(missing)}")


# What the templates read from an attack record, with the types they need: a record that holds anything else
# (a `votes` that is a string, a score that is text) is refused in one line that names the field.
_NUM, _INT, _TEXT, _BOOL, _NONE = "number", "whole number", "text", "true/false", "null"
_TYPES = {_NUM: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          _INT: lambda v: isinstance(v, int) and not isinstance(v, bool),
          _TEXT: lambda v: isinstance(v, str), _BOOL: lambda v: isinstance(v, bool), _NONE: lambda v: v is None}
VOTE_FIELDS = {"template": _TEXT, "vote": (_TEXT, _NONE), "images_agreeing": _INT, "tie": _BOOL,
               "is_true_name": _BOOL}
IMAGE_FIELDS = {"file": _TEXT, "sha256": _TEXT, "true_rank": _NUM, "true_prob": _NUM,
                "top": [[(_TEXT, _NUM)]]}
PERSON_FIELDS = {"name": _TEXT, "n_images": _INT, "score": _INT, "member": _BOOL, "p_value": _NUM,
                 "mean_log_prob": _NUM, "mean_rank": _NUM, "mean_prob": _NUM, "label": (_BOOL, _NONE),
                 "votes": [VOTE_FIELDS], "images": [IMAGE_FIELDS], "skipped": [{"file": _TEXT, "why": _TEXT}]}
ATTACK_FIELDS = {
    "manifest": {"inputs": {}}, "model": {}, "candidates": {"n": _INT},
    "rule": {"decided_by": _TEXT, "tau": (_INT, _NONE), "n_prompts": _INT, "n_candidates": _INT,
             "explanation": _TEXT, "p_value_method": _TEXT},
    "calibration": ({"threshold": (_NUM, _NONE), "null_scores": [_NUM]}, _NONE),
    "metrics": ({}, _NONE), "persons": [PERSON_FIELDS], "reference": [PERSON_FIELDS],
    "not_auditable": [{"name": _TEXT}], "warnings": [_TEXT],
}


def _describe(spec) -> str:
    if isinstance(spec, tuple):
        return " or ".join(_describe(s) for s in spec)
    if isinstance(spec, dict):
        return "an object"
    if isinstance(spec, list):
        return "a list"
    return spec


def _fits(value, spec) -> bool:
    if isinstance(spec, tuple):
        return any(_fits(value, s) for s in spec)
    if isinstance(spec, dict):
        return isinstance(value, dict)
    if isinstance(spec, list):
        return isinstance(value, list)
    return _TYPES[spec](value)


def check_fields(value, spec, where: str) -> None:
    """`value` has the shape `spec` describes (dict: required keys; [item]: list of items; tuple: any of)."""
    if not _fits(value, spec):
        raise InputError(f"the record's {where or 'top level'} must be {_describe(spec)}, got {_short(value)}")
    if isinstance(spec, tuple):
        spec = next(s for s in spec if _fits(value, s))
    if isinstance(spec, dict):
        for key, sub in spec.items():
            if key not in value:
                raise InputError(f"the record lacks {where + '.' if where else ''}{key}")
            check_fields(value[key], sub, f"{where}.{key}" if where else key)
    elif isinstance(spec, list) and spec:
        for i, item in enumerate(value):
            check_fields(item, spec[0], f"{where}[{i}]")


def _short(value) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


# --- jinja ---------------------------------------------------------------------------------------------------

def _read_template_file(name: str) -> str:
    return files("idia.templates").joinpath(name).read_text(encoding="utf-8")


def _template_source(name: str):
    if name not in TEMPLATES:  # only our own templates, never a path
        return None
    return _read_template_file(name)


@cache
def _css() -> str:
    return _read_template_file("report.css")


def visible_text(value) -> str:
    """The text with bidi controls and other control characters spelled out as [U+XXXX]."""
    out = []
    for ch in str(value):
        if ch in _BIDI_CONTROLS or unicodedata.category(ch) == "Cc":
            out.append(f"[U+{ord(ch):04X}]")
        else:
            out.append(ch)
    return "".join(out)


def _name(value) -> Markup:
    """A user-supplied string (a name, a path) as isolated, escaped, visible text."""
    return Markup('<bdi class="user">{}</bdi>').format(visible_text(value))


def _fixed(x, digits: int = 3) -> str:
    return "n/a" if x is None else f"{float(x):.{digits}f}"


def _pct(x, digits: int = 1) -> str:
    return "n/a" if x is None else f"{100 * float(x):.{digits}f}%"


def _pval(p) -> str:
    """Two significant digits, without e-notation a lawyer would have to decode."""
    if p is None:
        return "n/a"
    p = float(p)
    if p >= 0.01:
        return f"{p:.2f}".rstrip("0").rstrip(".") if p < 1 else "1"
    mantissa, exponent = f"{p:.1e}".split("e")
    return f"{mantissa} × 10^{int(exponent)}" if p < 1e-4 else f"{p:.2g}"


def _ci(pair, pct: bool = True) -> str:
    if not pair:
        return "n/a"
    fmt = _pct if pct else _fixed
    return f"{fmt(pair[0])} to {fmt(pair[1])}"


def _prompt(template: str) -> str:
    return str(template).replace("{0}", "[name]")


def _plain(value) -> str:
    """A settings value as text: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


@cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FunctionLoader(_template_source), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(name=_name, fixed=_fixed, pct=_pct, pval=_pval, ci=_ci, prompt=_prompt, plain=_plain,
                       visible=visible_text)
    return env


# --- the per-person record: read here and nowhere else ------------------------------------------------------

# The audit's complete table, one row per audited person, in the record's order (persons.csv).
PERSON_COLUMNS = ("name", "n_images", "score", "identified", "p_value", "mean_log_prob", "mean_rank", "mean_prob",
                  "label")
PHOTO_COLUMNS = ("person", "file", "sha256")


def person_summary(p: dict) -> dict:
    """The per-person numbers every report shows (templates and persons.csv read these keys, not the record's)."""
    return {"name": p["name"], "n_images": p["n_images"], "score": p["score"], "member": p["member"],
            "p_value": p["p_value"], "mean_log_prob": p["mean_log_prob"], "mean_rank": p["mean_rank"],
            "mean_prob": p["mean_prob"], "label": p.get("label"), "evidence": p.get("evidence"),
            "distractor_group": p.get("distractor_group")}


def person_detail(p: dict) -> dict:
    """One person in full, for a takedown: the summary, each phrasing's vote and each photo's answer."""
    return {**person_summary(p),
            "votes": [{"template": v["template"], "vote": v["vote"], "images_agreeing": v["images_agreeing"],
                       "tie": v["tie"], "is_true_name": v["is_true_name"]} for v in p["votes"]],
            "images": [{"file": im["file"], "sha256": im["sha256"], "true_rank": im["true_rank"],
                        "first_choice": im["top"][0][0] if im["top"] else None} for im in p["images"]],
            "skipped": p.get("skipped") or []}


def _person_row(s: dict) -> tuple:
    label = "" if s["label"] is None else ("member" if s["label"] else "non-member")
    return (s["name"], s["n_images"], s["score"], "yes" if s["member"] else "no", float(s["p_value"]),
            float(s["mean_log_prob"]), float(s["mean_rank"]), float(s["mean_prob"]), label)


# --- what each report shows ----------------------------------------------------------------------------------

def _find_person(data: dict, person: str | None) -> dict:
    """The record's entry for `person`: exact, then NFC-normalised, then the one case-insensitive match.

    The names are indexed once (a dict), so finding one person among 10^5 costs one pass, not one per try."""
    if not person:
        raise InputError("a takedown report is about one person: give --person NAME")
    people = data["persons"]
    index: dict[str, dict] = {}
    for p in people:
        index.setdefault(p["name"], p)
    for wanted in (person, normalize_name(person)):
        if wanted in index:
            return index[wanted]
    folded = name_key(person)
    same = [p for p in people if name_key(p["name"]) == folded]
    if len(same) == 1:
        return same[0]
    close = difflib.get_close_matches(person, list(index), n=3)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise InputError(f"no audited person named {person!r} among the {len(people)} in the record{hint}")


LONG_LIST = 8


def _flatten(d, prefix: str = "") -> list[tuple[str, object]]:
    """Nested settings as (dotted key, value) rows, in the record's order; a long list is named, not spelled out."""
    rows: list[tuple[str, object]] = []
    for key, value in (d or {}).items():
        if isinstance(value, dict) and value:
            rows += _flatten(value, f"{prefix}{key}.")
        elif isinstance(value, list) and len(value) > LONG_LIST:
            rows.append((f"{prefix}{key}", f"{len(value)} entries, listed in the record"))
        else:
            rows.append((f"{prefix}{key}", value))
    return rows



def distractor_groups(data: dict) -> list[dict]:
    """Every list of distractors the record describes: its `groups`, or (a record from before groups) the one
    block; none without a `distractors` block."""
    block = data.get("distractors")
    return (block.get("groups") or [block]) if block else []


def _drawn_for(data: dict, p: dict) -> dict | None:
    """How this person's distractors were drawn: their group's block (the first group's, as the record's top
    level holds, when the record names none)."""
    groups = distractor_groups(data)
    return next((g for g in groups if g.get("id") == p["distractor_group"]), groups[0] if groups else None)


def _takedown(data: dict, person: str | None, include_photos: bool, source_name: str) -> dict:
    found = _find_person(data, person)
    AttackResult.from_dict({**data, "persons": [found], "reference": []})  # this person's fields, all of them
    p = person_detail(found)
    photos = [thumbnail(im["file"], im["sha256"]) for im in p["images"]] if include_photos else []
    report_cmd = shlex.join(["idia", "report", source_name, "--kind", "takedown", "--person", p["name"]])
    return {"person": p, "photos": photos, "include_photos": include_photos, "report_command": report_cmd,
            "drawn": _drawn_for(data, p)}


def _consecutive_groups(images: list[dict]) -> list[tuple[str, list[dict]]]:
    """The manifest's photos as (person, photos) runs, in the record's order (for the hash appendix)."""
    groups: list[tuple[str, list[dict]]] = []
    for im in images:
        if not groups or groups[-1][0] != im["person"]:
            groups.append((im["person"], []))
        groups[-1][1].append(im)
    return groups



# An audit's pages list at most this many people and this many photo hashes; beyond that the pages name the
# strongest evidence and the complete tables travel as attachments. 200 rows are about 4 pages; 3,000 photo
# hashes (the world audit: 300 people, 10 photos each) about 45.
PAGE_PEOPLE = 200
PAGE_PHOTOS = 3000
# The record is attached to its audit PDF up to this size (it is held in memory anyway; the PDF compresses it).
ATTACH_RECORD_MAX_BYTES = 256 * 2**20


@dataclass(frozen=True)
class Attachment:
    """A file carried inside the PDF: bytes idia made (never fetched), with its SHA-256 printed in the pages."""

    name: str
    data: bytes
    description: str
    relationship: str = "Data"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class Rendered:
    """A report: its HTML, and the files to attach to its PDF."""

    html: str
    attachments: list[Attachment] = field(default_factory=list)


# A text cell a spreadsheet would read as a formula ("=HYPERLINK(...)" as a name) is written with a leading
# apostrophe, the spreadsheets' own mark for "this is text"; numbers are written as numbers and never touched.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value):
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA_START) else value


def _csv_bytes(header: tuple, rows) -> bytes:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([_cell(v) for v in row] for row in rows)
    return buf.getvalue().encode("utf-8")


def _bytes(n: int) -> str:
    return f"{n:,} bytes" if n < 2**20 else f"{n / 2**20:,.1f} MB"


def _by_evidence(s: dict) -> tuple:
    """Strongest evidence first: smallest p-value, then highest continuous score, then name (a total order)."""
    return (float(s["p_value"]), -float(s["mean_log_prob"]), s["name"])


def people_on_pages(summaries: list[dict], cap: int) -> list[dict]:
    """Everyone, in the record's order, when they fit; else the `cap` identified people with the strongest
    evidence (a heap: one pass, not a sort of everyone)."""
    if len(summaries) <= cap:
        return summaries
    return heapq.nsmallest(cap, (s for s in summaries if s["member"]), key=_by_evidence)


def _audit_attachments(summaries: list[dict], images: list[dict], raw: bytes, source_name: str,
                       record_limit: int) -> tuple[list[Attachment], dict]:
    files = [Attachment("persons.csv", _csv_bytes(PERSON_COLUMNS, map(_person_row, summaries)),
                        "every audited person: photos, score, verdict, p-value, continuous score, rank, truth"),
             Attachment("photos.csv", _csv_bytes(PHOTO_COLUMNS, ((im["person"], im["file"], im["sha256"])
                                                                  for im in images)),
                        "every photo the attack read, with its SHA-256")]
    record_note = None
    if len(raw) <= record_limit:
        files.append(Attachment(source_name, raw, "the record this report renders (its SHA-256 is the document ID)",
                                relationship="Source"))
    else:
        record_note = (f"{source_name} ({_bytes(len(raw))}) is larger than the {_bytes(record_limit)} attachment "
                       "limit and is not attached; its SHA-256 is this report's document ID")
    return files, {"attachments": files, "record_not_attached": record_note}


def _audit(data: dict, raw: bytes, source_name: str, record_limit: int) -> tuple[dict, list[Attachment]]:
    summaries = [person_summary(p) for p in data["persons"]]
    calibration = data.get("calibration")
    continuous = data["rule"]["decided_by"] == "calibrated-continuous"
    distribution = plots.score_distribution(
        [s["mean_log_prob"] for s in summaries],
        calibration["null_scores"] if calibration else None,
        calibration["threshold"] if calibration and continuous else None)
    roc = (data.get("metrics") or {}).get("roc")
    roc_plot = plots.roc_curve(roc["fpr"], roc["tpr"], roc["auc"]) if roc else None
    images = data["manifest"]["inputs"].get("images", [])
    identified = [s for s in summaries if s["member"]]
    everyone = len(summaries) <= PAGE_PEOPLE
    listed = people_on_pages(summaries, PAGE_PEOPLE)
    files, notes = _audit_attachments(summaries, images, raw, source_name, record_limit)
    context = {
        "persons": summaries,
        # Tallies of the verdicts and labels the attached table lists (not new statistics).
        "n_identified": len(identified),
        "n_labelled": sum(1 for s in summaries if s["label"] is not None),
        "listed": listed, "lists_everyone": everyone, "page_people": PAGE_PEOPLE,
        "distribution_plot": distribution, "roc_plot": roc_plot,
        "not_plotted": sum(1 for s in summaries if s["mean_log_prob"] <= plots.NOT_FINITE),
        "images": images,
        "image_groups": _consecutive_groups(images) if len(images) <= PAGE_PHOTOS else None,
        "page_photos": PAGE_PHOTOS,
        "distractor_groups": distractor_groups(data),
        **notes,
    }
    return context, files


def _mitigation(data: dict) -> dict:
    record = data["defense"].get("record") or {}
    losses = record.get("losses") or []
    sweep = data.get("sweep")
    return {
        "v": data,
        "settings_rows": _flatten(data["defense"].get("settings")),
        "input_rows": _flatten(data["manifest"].get("inputs")),
        "groups": [("redacted", "People asked to be forgotten (redacted)", data["redacted"]),
                   ("neighbours", "Namesakes of redacted people (share a first or last name)", data["neighbours"]),
                   ("collateral", "Everyone else audited (collateral)", data["collateral"])],
        "losses_plot": plots.training_curve(losses) if losses else None,
        "sweep_plot": plots.sweep(sweep["rows"], sweep.get("kind", "")) if sweep and sweep.get("rows") else None,
        "tradeoff_plot": plots.tradeoff(sweep["rows"], sweep.get("kind", "")) if sweep and sweep.get("rows") else None,
        "probes": (data.get("probes") or {}).get("rows") or [],
        "relearning": data.get("relearning"),
        "photos": data.get("photos"),
        "n_verify_photos": sum(len(v) for v in ((data.get("photos") or {}).get("verify") or {}).values()),
        "n_unlearn_photos": sum(len(v) for v in ((data.get("photos") or {}).get("unlearn") or {}).values()),
    }


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
           record_limit: int = ATTACH_RECORD_MAX_BYTES, document_id: str | None = None) -> Rendered:
    """The report as one self-contained HTML page (CSS inline, figures and photos as data: URIs), and for an
    audit the files its PDF carries (persons.csv, photos.csv and the record, each SHA-256 printed in the page).

    `raw` is the input file's bytes (the document ID is their SHA-256 unless `document_id` is given); without it,
    the record serialised the way idia writes it (which is those bytes for an unedited record)."""
    check_record(kind, data)
    if person is not None and kind != "takedown":
        raise InputError("--person applies to takedown reports only")
    if include_photos and kind != "takedown":
        raise InputError("--include-photos applies to takedown reports only")
    if raw is None:
        raw = _serialised(data)
    context = {"kind": kind, "title": TITLES[kind], "css": Markup(_css()),
               "document_id": document_id or hashlib.sha256(raw).hexdigest(), "source_name": source_name,
               "generated_utc": generated_utc or _generated_utc(), "data": data, "manifest": data["manifest"],
               "attachments": []}
    files: list[Attachment] = []
    try:
        if kind == "takedown":
            context.update(_takedown(data, person, include_photos, source_name))
        elif kind == "audit":
            more, files = _audit(data, raw, source_name, record_limit)
            context.update(more)
        else:
            context.update(_mitigation(data))
        return Rendered(_env().get_template(f"{kind}.html").render(context), files)
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
    from weasyprint import HTML  # imported here: a second or two, only reports need it
    from weasyprint import Attachment as PdfAttachment
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
                          source_name=input_path.name, generated_utc=generated, record_limit=record_limit)
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
