"""Names as people are told apart: one spelling per name, and the key two names must share to be one person."""

from __future__ import annotations

import unicodedata

# Format characters (Unicode category Cf) that spelling needs: the zero-width non-joiner and joiner shape Persian,
# Arabic and Indic names. They stay in a name's spelling but never tell two people apart (`name_key` drops them).
KEPT_FORMAT = frozenset("\u200c\u200d")


def _without_format(text: str, keep: frozenset = KEPT_FORMAT) -> str:
    """`text` without invisible format characters (zero-width spaces, bidirectional overrides, soft hyphens,
    byte-order marks, tags): they would make a second person out of one name, or show a name reversed."""
    return "".join(c for c in text if c in keep or unicodedata.category(c) != "Cf")


def normalize_name(name: str) -> str:
    """One spelling per name: no invisible format characters (but ZWNJ and ZWJ, which some scripts need), Unicode
    NFC (so a precomposed and a decomposed "Zoë" are one name), single spaces, no surrounding blanks. Case is
    kept: it is part of the name."""
    return " ".join(unicodedata.normalize("NFC", _without_format(name)).split())


def name_key(name: str) -> str:
    """What two names must share to be the same person: the normalised name without any format character,
    case-folded (and NFC again, since case folding can decompose). Every duplicate check and every lookup by name
    goes through this."""
    return unicodedata.normalize("NFC", _without_format(normalize_name(name), frozenset()).casefold())


def spell_out_difference(a: str, b: str) -> str:
    """Where two names that look alike differ, by code point: 'U+00EB LATIN SMALL LETTER E WITH DIAERESIS vs
    U+0065 LATIN SMALL LETTER E, U+0308 COMBINING DIAERESIS (from character 3)'. For error messages, where
    two identical-looking names would otherwise leave the user guessing."""
    if a == b:
        return "they are spelled identically"
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    end = 0
    while end < min(len(a), len(b)) - start and a[-1 - end] == b[-1 - end]:
        end += 1

    def points(s: str) -> str:
        part = s[start:len(s) - end]
        return ", ".join(f"U+{ord(c):04X} {unicodedata.name(c, 'unnamed')}" for c in part) or "nothing"
    return f"{points(a)} vs {points(b)} (from character {start + 1})"
