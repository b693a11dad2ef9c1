"""The reports' jinja environment: only the package's own templates, autoescaped, undefined fields raising, and
the filters that format, round and word the record's numbers (they compute no statistic).

Names and paths come from users' files: every template is autoescaped, a user string is shown through `name`
(isolated, escaped, bidi and control characters spelled out), and the loader serves only the templates named
here and the report kinds' own, never a path.
"""

from __future__ import annotations

import json
import unicodedata
from functools import cache
from importlib.resources import files

import jinja2
from markupsafe import Markup

from idia.compliance.report.kinds import REPORT_KINDS
from idia.compliance.report.wording import ci as _ci
from idia.compliance.report.wording import count as _count
from idia.compliance.report.wording import fixed as _fixed
from idia.compliance.report.wording import ordinal as _ordinal
from idia.compliance.report.wording import pct as _pct
from idia.compliance.report.wording import pval as _pval
from idia.compliance.report.wording import seconds as _seconds

# The templates every kind shares: the page and the partials ({% include %}d; their names start with "_").
SHARED_TEMPLATES = ("base.html", "_manifest.html", "_evidence_takedown.html", "_evidence_audit.html", "_study.html",
                    "_facts.html", "_carried.html", "_auditor.html", "_signature.html", "_attachments.html",
                    "_model_id.html", "_threat_model.html", "_inputs_more.html", "_cannot_flag.html",
                    "_edpb.html")
# Characters that reorder or hide text (bidi controls) or are not text at all: shown as [U+XXXX], so a name
# such as "\u202eevil" cannot make the report read differently from what the record holds.
_BIDI_CONTROLS = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _read_template_file(name: str) -> str:
    return files("idia.templates").joinpath(name).read_text(encoding="utf-8")


def _template_source(name: str):
    if name not in SHARED_TEMPLATES and name not in {k.template for k in REPORT_KINDS}:
        return None  # only our own templates, never a path
    return _read_template_file(name)


@cache
def stylesheet() -> str:
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


def _prompt(template: str) -> str:
    return str(template).replace("{0}", "[name]")


def _plain(value) -> str:
    """A settings value as text: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FunctionLoader(_template_source), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(name=_name, fixed=_fixed, pct=_pct, pval=_pval, ci=_ci, prompt=_prompt, plain=_plain,
                       visible=visible_text, seconds=_seconds, ordinal=_ordinal, count=_count)
    return env
