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

# The templates every kind shares: the page and the partials ({% include %}d; their names start with "_").
SHARED_TEMPLATES = ("base.html", "_manifest.html", "_evidence_takedown.html", "_evidence_audit.html", "_study.html",
                    "_cannot_flag.html")
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
def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FunctionLoader(_template_source), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(name=_name, fixed=_fixed, pct=_pct, pval=_pval, ci=_ci, prompt=_prompt, plain=_plain,
                       visible=visible_text)
    return env
