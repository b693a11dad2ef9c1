"""The only way a report's PDF may load anything: `data:` URIs, which carry their bytes inline.

A report renders names and paths that come from users' files. Even though every such string is escaped, the
PDF engine is given a fetcher that cannot read a local file, reach a network or embed an attachment: weasyprint
70 sends every image, stylesheet, font, SVG reference and `<a rel="attachment">` through its `URLFetcher`, and
this subclass refuses every scheme but `data:` before anything is opened.
"""

from __future__ import annotations

from weasyprint.urls import URLFetcher

ALLOWED_SCHEME = "data"


class DataOnlyURLFetcher(URLFetcher):
    """Serve `data:` URIs; refuse file://, http(s)://, ftp://, relative and every other URL.

    `requested` records every URL weasyprint asked for and `refused` the ones turned away, so tests (and a
    suspicious reader) can check that nothing else was tried. A refusal raises ValueError, which weasyprint
    turns into a logged warning and a missing resource."""

    def __init__(self):
        # allowed_protocols makes the parent class refuse other schemes too: two locks, one key.
        super().__init__(allowed_protocols={ALLOWED_SCHEME}, allow_redirects=False, timeout=1)
        self.requested: list[str] = []
        self.refused: list[str] = []

    def fetch(self, url, headers=None):
        url = str(url)
        self.requested.append(url)
        if url[:len(ALLOWED_SCHEME) + 1].lower() != ALLOWED_SCHEME + ":":
            self.refused.append(url)
            raise ValueError(f"idia reports load nothing but data: URIs; refused {url[:120]!r}")
        return super().fetch(url, headers)
