"""Evidence reports: a `results.json` (or `verification.json`) rendered as HTML and PDF, and nothing more.

The JSON is the record; a report is a rendering of it. Templates format, round and word the numbers the record
holds and never compute a statistic of their own; the only arithmetic here is tallying verdicts the report also
lists, and the figures draw numbers the record holds. Three kinds:

  takedown    one person, for a lawyer: the verdict, the model's answers, the statistic in plain words, limits
  audit       every audited person, for a data-protection officer: table, distributions, ROC, findings
  mitigation  a defense's `idia verify` record, for an ML team: identification and utility before and after

Safety: names and paths come from users' files. Every template is autoescaped, undefined fields raise, only
the package's own templates are ever rendered, and the PDF engine gets a fetcher that loads only `data:` URIs
(`compliance.fetcher`), so no local file, network address or attachment can be pulled into a report.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import json
import os
import shlex
import unicodedata
from datetime import datetime, timezone
from functools import cache
from importlib.resources import files
from pathlib import Path

import jinja2
from markupsafe import Markup

from attack.errors import InputError
from attack.io import atomic_write_bytes, atomic_write_text
from attack.manifest import utc_now
from attack.names import normalize_name
from attack.results import KIND_ATTACK, AttackResult

from . import plots
from .fetcher import DataOnlyURLFetcher
from .photos import thumbnail

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
             "_evidence_takedown.html", "_evidence_audit.html")  # partials: {% include %}d
# Characters that reorder or hide text (bidi controls) or are not text at all: shown as [U+XXXX], so a name
# such as "\u202eevil" cannot make the report read differently from what the record holds.
_BIDI_CONTROLS = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


# --- loading and checking the record -------------------------------------------------------------------------

def load_record(path: str | Path) -> tuple[dict, bytes]:
    """The JSON record and its exact bytes (the report's document ID is their SHA-256)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a JSON record") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror})") from None
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
        AttackResult.from_dict(data)  # schema version and field names; raises InputError
        return
    if data.get("schema_version") not in VERIFICATION_SCHEMAS:
        raise InputError(f"verification schema version {data.get('schema_version')!r} is not one of "
                         f"{', '.join(map(str, VERIFICATION_SCHEMAS))}")
    missing = [k for k in VERIFICATION_KEYS if k not in data]
    if missing:
        raise InputError(f"the verification record lacks {', '.join(missing)}")


# --- jinja ---------------------------------------------------------------------------------------------------

@cache
def _templates_dir():
    """The `idia_templates` package's folder (templates/, shipped as package data).

    It has no __init__.py, so it is a namespace package; under an editable install Python 3.11's `files()`
    refuses its path (it holds setuptools' path hook beside the folder), so fall back to the real folder."""
    try:
        return files("idia_templates")
    except NotADirectoryError:
        spec = importlib.util.find_spec("idia_templates")
        for location in spec.submodule_search_locations if spec else []:
            if Path(location).is_dir():
                return Path(location)
        raise


def _read_template_file(name: str) -> str:
    return _templates_dir().joinpath(name).read_text(encoding="utf-8")


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


# --- what each report shows ----------------------------------------------------------------------------------

def _find_person(data: dict, person: str | None) -> dict:
    if not person:
        raise InputError("a takedown report is about one person: give --person NAME")
    people = data["persons"]
    for wanted in (person, normalize_name(person)):
        for p in people:
            if p["name"] == wanted:
                return p
    folded = normalize_name(person).casefold()
    same = [p for p in people if p["name"].casefold() == folded]
    if len(same) == 1:
        return same[0]
    close = difflib.get_close_matches(person, [p["name"] for p in people], n=3)
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


def _takedown(data: dict, person: str | None, include_photos: bool, source_name: str) -> dict:
    p = _find_person(data, person)
    photos = [thumbnail(im["file"], im["sha256"]) for im in p["images"]] if include_photos else []
    report_cmd = shlex.join(["idia", "report", source_name, "--kind", "takedown", "--person", p["name"]])
    return {"person": p, "photos": photos, "include_photos": include_photos, "report_command": report_cmd}


def _consecutive_groups(images: list[dict]) -> list[tuple[str, list[dict]]]:
    """The manifest's photos as (person, photos) runs, in the record's order (for the hash appendix)."""
    groups: list[tuple[str, list[dict]]] = []
    for im in images:
        if not groups or groups[-1][0] != im["person"]:
            groups.append((im["person"], []))
        groups[-1][1].append(im)
    return groups


def _audit(data: dict) -> dict:
    persons = data["persons"]
    calibration = data.get("calibration")
    continuous = data["rule"]["decided_by"] == "calibrated-continuous"
    distribution = plots.score_distribution(
        [p["mean_log_prob"] for p in persons],
        calibration["null_scores"] if calibration else None,
        calibration["threshold"] if calibration and continuous else None)
    roc = (data.get("metrics") or {}).get("roc")
    roc_plot = plots.roc_curve(roc["fpr"], roc["tpr"], roc["auc"]) if roc else None
    images = data["manifest"]["inputs"].get("images", [])
    not_plotted = sum(1 for p in persons if p["mean_log_prob"] <= plots.NOT_FINITE)
    return {
        "persons": persons,
        # Tallies of the verdicts and labels the table lists (not new statistics).
        "n_identified": sum(1 for p in persons if p["member"]),
        "n_labelled": sum(1 for p in persons if p["label"] is not None),
        "identified": [p for p in persons if p["member"]],
        "distribution_plot": distribution, "roc_plot": roc_plot, "not_plotted": not_plotted,
        "images": images,
        "image_groups": _consecutive_groups(images),
    }


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


def render_html(kind: str, data: dict, person: str | None = None, include_photos: bool = False,
                document_id: str | None = None, source_name: str = "results.json",
                generated_utc: str | None = None) -> str:
    """The report as one self-contained HTML page (CSS inline, figures and photos as data: URIs).

    `document_id` is the SHA-256 of the input file's bytes; without it, of the record serialised the way idia
    writes it (which is those bytes for an unedited record)."""
    check_record(kind, data)
    if person is not None and kind != "takedown":
        raise InputError("--person applies to takedown reports only")
    if include_photos and kind != "takedown":
        raise InputError("--include-photos applies to takedown reports only")
    if document_id is None:
        serialised = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        document_id = hashlib.sha256(serialised.encode("utf-8")).hexdigest()
    context = {"kind": kind, "title": TITLES[kind], "css": Markup(_css()), "document_id": document_id,
               "source_name": source_name, "generated_utc": generated_utc or _generated_utc(),
               "data": data, "manifest": data["manifest"]}
    try:
        if kind == "takedown":
            context.update(_takedown(data, person, include_photos, source_name))
        elif kind == "audit":
            context.update(_audit(data))
        else:
            context.update(_mitigation(data))
        return _env().get_template(f"{kind}.html").render(context)
    except jinja2.UndefinedError as e:
        raise InputError(f"the record lacks a field the {kind} report needs ({e.message})") from None
    except (KeyError, TypeError, AttributeError) as e:
        raise InputError(f"the record is malformed for a {kind} report ({type(e).__name__}: {e})") from None


def render_pdf(html: str, url_fetcher: DataOnlyURLFetcher | None = None) -> bytes:
    """The PDF of a report's HTML. Loads nothing but data: URIs; pass a fetcher to inspect what was asked for."""
    from weasyprint import HTML  # imported here: a second or two, and only reports need it
    fetcher = url_fetcher if url_fetcher is not None else DataOnlyURLFetcher()
    return HTML(string=html, base_url=None, url_fetcher=fetcher).write_pdf()


def write_report(input_path: str | Path, kind: str, out: str | Path, person: str | None = None,
                 include_photos: bool = False, html_out: str | Path | None = None) -> list[Path]:
    """Render the record at `input_path` to `out` (PDF, or HTML when it ends in .html) and `html_out`.

    Each file is written atomically. Returns the paths written."""
    input_path, out = Path(input_path), Path(out)
    data, raw = load_record(input_path)
    try:
        html = render_html(kind, data, person=person, include_photos=include_photos,
                           document_id=hashlib.sha256(raw).hexdigest(), source_name=input_path.name)
    except InputError as e:
        raise InputError(f"{input_path}: {e}") from None
    written = []
    if html_out is not None:
        written.append(atomic_write_text(html_out, html))
    if out.suffix.lower() in (".html", ".htm"):
        written.append(atomic_write_text(out, html))
    else:
        written.append(atomic_write_bytes(out, render_pdf(html)))
    return written
