"""Page-one facts: the figures a report's first page shows, declared once, rendered by the template and
recomputed by `idia check` from the record the PDF carries.

Each report kind declares `facts(record) -> list[Fact]` (in its module in `kinds/`), where `record` is the record
its PDF carries (the full record, or the extract a takedown or a pseudonymised mitigation carries). The template
renders exactly these facts (`_facts.html`: each value in large type over its caption); `idia check` extracts the
first page's text and requires each fact's text there. Adding, removing or rewording a fact is an edit of the
kind's `facts` function and nothing else: the page and the check follow.

The comparison is of the text with all white space removed and Unicode compatibility forms folded (NFKC), so line
breaks, table cells and ligatures the PDF engine chose do not matter, while any changed digit, word or sign does.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Fact:
    """One figure on page 1: `value` in large type ("5 of 200"), `caption` under it ("audited people
    identified"). `key` names it in the checker's messages."""

    key: str
    value: str
    caption: str

    @property
    def text(self) -> str:
        return f"{self.value} {self.caption}"


def squeezed(text: str) -> str:
    """The text as compared: NFKC, no white space (line breaks and cell boundaries are the layout's, not the
    report's)."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def missing_facts(facts: list[Fact], page_text: str) -> list[Fact]:
    """The facts whose text the page does not show."""
    page = squeezed(page_text)
    return [f for f in facts if squeezed(f.text) not in page]
