"""Names as people are told apart: one spelling per name, and the key two names must share to be one person."""

from __future__ import annotations

import unicodedata


def normalize_name(name: str) -> str:
    """One spelling per name: Unicode NFC (so a precomposed and a decomposed "Zoë" are one name), single spaces,
    no surrounding blanks. Case is kept: it is part of the name."""
    return " ".join(unicodedata.normalize("NFC", name).split())


def name_key(name: str) -> str:
    """What two names must share to be the same person: the normalised name, case-folded (and NFC again, since
    case folding can decompose). Every duplicate check and every lookup by name goes through this."""
    return unicodedata.normalize("NFC", normalize_name(name).casefold())
