"""The word lists the rule-based name finder reads: first names, common English words, and the special words
(titles, places, organisations, brands, name particles) of `attack/data/caption_words.tsv`.

First names: the dictionary that ships inside `gender-guesser` (Jörg Michael's nam_dict.txt, about 48,000 first
names from 50 countries; GNU FDL), read from the installed package, never fetched, plus idia's bundled list (the
synthetic world's people). Common words: SCOWL's most common English words (`scripts/make-common-words`). Each
list is read once per process.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from idia.errors import InputError

KINDS = ("title", "stop", "place", "head", "product", "particle", "suffix", "prefix", "brand")


def fold(word: str) -> str:
    """A word as the lists hold it: case-folded, accents removed, typographic apostrophes made plain."""
    if word.isascii():
        return word.casefold()
    word = word.replace("\u2019", "'").casefold()
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _data(filename: str) -> str:
    return resources.files("idia.attack").joinpath("data", filename).read_text(encoding="utf-8")


def _gender_guesser_names() -> dict[str, int]:
    """Every first name in gender-guesser's nam_dict.txt ('+' marks a join written as nothing, space or '-'), with
    how common it is where it is most common (the file's scale: 1, rare, to 13, very common)."""
    try:
        source = resources.files("gender_guesser").joinpath("data", "nam_dict.txt")
        text = source.read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        raise InputError("the caption scan needs gender-guesser's first-name dictionary: "
                         "pip install gender-guesser") from None
    names: dict[str, int] = {}
    for line in text.splitlines():
        if not line or line[0] in "#=":
            continue
        parts = line.split()
        if len(parts) < 2:
            continue
        name = parts[1]
        often = max((int(c, 16) for c in line[30:-1] if c in _HEX), default=1)
        for form in ((name.replace("+", ""), name.replace("+", " "), name.replace("+", "-")) if "+" in name
                     else (name,)):
            key = fold(form)
            names[key] = max(names.get(key, 0), often)
    return names


_HEX = frozenset("123456789ABCD")
BUNDLED_FREQUENCY = 5  # idia's own first names (the world's people) count as fairly common


@dataclass(frozen=True)
class Lexicon:
    first_names: dict[str, int]  # folded first name -> how common (1 to 13; see _gender_guesser_names)
    common_words: frozenset[str]
    kinds: dict[str, str]  # folded word -> one of KINDS (whole brand names joined by "_")

    def kind(self, folded: str) -> str | None:
        return self.kinds.get(folded)


@lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    """The lists, read once per process."""
    from idia.attack.inputs.names import first_names as bundled_first_names
    kinds: dict[str, str] = {}
    for line in _data("caption_words.tsv").splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("word\t"):
            continue
        word, kind = line.split("\t")
        if kind not in KINDS:
            raise RuntimeError(f"caption_words.tsv: unknown kind {kind!r} for {word!r}")
        kinds[fold(word)] = kind
    common = frozenset(w.strip() for w in _data("common_words.txt").splitlines()
                       if w.strip() and not w.startswith("#"))
    firsts = _gender_guesser_names()
    for name in bundled_first_names():
        firsts[fold(name)] = max(firsts.get(fold(name), 0), BUNDLED_FREQUENCY)
    # A word that is a title, function word or particle is never taken as someone's first name.
    firsts = {n: v for n, v in firsts.items()
              if kinds.get(n) not in ("title", "stop", "particle", "suffix", "head", "prefix") and len(n) > 1}
    return Lexicon(first_names=firsts, common_words=common, kinds=kinds)
