"""Finding people's names in a caption without a model: capitalisation, a first-name lexicon and word lists.

A name is a first name from the lexicon (`lexicon.first_names`) followed by one to three capitalised surname words,
with initials ("John F. Kennedy") and particles ("van der Berg", "de la Cruz", "bin Salman") between them; O'Brien,
McDonald and hyphenated names are single words. Titles and roles before a name are dropped ("President", "Dr.",
"actress"), and so are possessives ("Moreno's") and suffixes ("Jr."). "Last, First" and "LAST First" are read
the other way round.

What is not a person:
- a run of capitals that ends in a place or organisation word ("George Washington Bridge", "Alice Moreno
  Foundation", `head` in caption_words.tsv), a place pair ("Paris France"; "in Florence Italy");
- a brand or product named after someone (the `brand` list; or a name followed by a product word: "Tom Ford
  sunglasses");
- common words that happen to be first names and surnames ("Rose Garden", "Will Power", "Young Woman").

How far capitals can be trusted depends on the caption. In ordinary sentence case a capitalised word mid-sentence
is a proper noun, so a first name followed by one is a *strong* mention. In ALL CAPS or Title Case (stock photo
captions) capitals say nothing: a mention is strong only when neither its first name nor its surname is a common
English word ("Alice Moreno"), and *weak* otherwise ("EMMA STONE", "Grace Park"). A weak mention counts only for a
person who also has a strong mention somewhere in the data set (`tally`): "Emma Stone" is counted in its all-caps
captions because she is named in ordinary ones, while "Rose Garden" never is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from idia.attack.inputs.captions.lexicon import Lexicon, fold, lexicon

_TOKEN = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+|-[^\W\d_]+)*['\u2019]?\.?")
_LOCATIVE = frozenset({"in", "at", "near", "from", "to", "outside", "around", "across", "visiting", "visit",
                       "toward", "towards", "into", "through", "across"})
_ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "mt", "gen", "col", "capt", "lt",
                            "sgt", "rev", "gov", "sen", "rep", "hon", "maj", "cpl", "mme", "mlle", "ave", "blvd"})
_SENTENCE_BREAK = re.compile(r"[.!?:;|\n\u2022\u2013\u2014\"]|\s-\s")
_PUNCTUATION = ".,;:!?()[]{}\"'\u201c\u201d\u2018\u2019\u00ab\u00bb/|*"
_WORD_SPLIT = re.compile(r"[\s/|,;:()\[\]{}\"+&=*\u201c\u201d]+")
_DIGIT_NEXT = re.compile(r" ?\d")
_PARTICLE_PREFIX = re.compile(r"^(?:al|el|ul|bin|ibn|d|l|o)['\u2019-][^\W\d_]", re.IGNORECASE)
# Place words that are common surnames too: a first name before one may be a person ("Benny Hill").
_HEAD_SURNAMES = frozenset({"park", "hill", "field", "day", "lane", "hall", "street", "bay", "church", "bridge",
                            "court", "camp", "post", "ward", "banks", "rivers", "brooks", "wood", "marsh", "ford"})
MAX_SURNAME_WORDS = 3
ENTITY_LOOKAHEAD = 3  # a place or organisation word this many words after a name makes the run an entity
RARE_FIRST_NAME = 4  # on nam_dict's scale of how common a first name is (1 to 13)
JOIN, COMMA, BREAK = 0, 1, 2


@dataclass(frozen=True)
class Mention:
    """One person named in a caption: `key` is what two mentions must share to be the same person."""

    key: str
    form: str  # as written, without title or possessive
    strong: bool


class _Tok:
    __slots__ = ("text", "f", "cap", "upper", "poss", "ends", "gap", "initial", "sent_start", "glued")

    def __init__(self, raw: str, gap: int, glued: bool = False):
        text = raw
        dot = text[-1] == "."
        if dot:
            text = text[:-1]
        self.poss = False
        if "'" in text or "\u2019" in text:
            if len(text) > 2 and text[-2] in "'\u2019" and text[-1] in "sS":
                text, self.poss = text[:-2], True
            elif text[-1] in "'\u2019":
                text, self.poss = text[:-1], True
        self.text = text
        self.f = fold(text)
        self.cap = text[:1].isupper() or _particle_prefixed(text)
        self.upper = len(text) > 1 and text.isupper()
        self.initial = len(text) == 1 and self.cap
        # A full stop after a word that is neither an initial nor an abbreviation ends the sentence.
        self.ends = dot and not self.initial and self.f not in _ABBREVIATIONS
        self.gap = gap
        self.sent_start = False
        self.glued = glued  # a digit follows at once ("DB5", "Jan 5"): a model number or a date, not a name


def _particle_prefixed(text: str) -> bool:
    """'al-Farsi', 'd'Alembert': a lower-case particle joined to a capitalised surname."""
    m = _PARTICLE_PREFIX.match(text)
    return m is not None and text[m.end() - 1].isupper()


def _tokens(caption: str) -> list[_Tok]:
    toks: list[_Tok] = []
    last = 0
    for m in _TOKEN.finditer(caption):
        between = caption[last:m.start()]
        if not between or between.isspace():
            gap = JOIN
        elif between.strip() == ",":
            gap = COMMA
        else:
            gap = BREAK
        tok = _Tok(m.group(), gap, glued=_DIGIT_NEXT.match(caption, m.end()) is not None)
        tok.sent_start = not toks or toks[-1].ends or (gap == BREAK and _SENTENCE_BREAK.search(between) is not None)
        toks.append(tok)
        last = m.end()
    return toks


def _informative(toks: list[_Tok], lex: Lexicon) -> bool:
    """Whether capitals mean proper nouns here: not ALL CAPS, and not Title Case. Function words ("at", "the",
    "of") decide when the caption has any mid-sentence: all lower case is ordinary writing, one capitalised is
    Title Case. Without them, the common words mid-sentence must be mostly lower case. A caption with neither
    ("Alice Moreno") says nothing."""
    long = [t for t in toks if len(t.text) > 1]
    if long and sum(t.upper for t in long) >= 0.8 * len(long):
        return False
    function = [t for t in toks if not t.sent_start and lex.kind(t.f) == "stop"]
    if function:
        return not any(t.cap for t in function)
    common = [t for t in toks if not t.sent_start and t.f in lex.common_words]
    return bool(common) and sum(t.cap for t in common) <= 0.5 * len(common)


class RuleExtractor:
    """The rules (module docstring); `extract(caption)` gives each person named once."""

    name = "rules"

    def __init__(self, lex: Lexicon | None = None):
        self.lex = lex or lexicon()

    def describe(self) -> dict:
        return {"extractor": self.name, "first_names": len(self.lex.first_names),
                "common_words": len(self.lex.common_words)}

    def extract(self, caption: str) -> list[Mention]:
        if not self._may_name(caption):
            return []
        toks = _tokens(caption)
        if not toks:
            return []
        informative = _informative(toks, self.lex)
        found: dict[str, Mention] = {}
        taken: set[int] = set()
        for m, a in self._reversed_names(toks):
            found.setdefault(m.key, m)
            taken.add(a)
        for start, end in self._runs(toks):
            if start in taken and end - start == 2:
                continue  # "MORENO Alice", read the other way round already
            for m in self._names_in_run(toks, start, end, informative):
                if m.key not in found or (m.strong and not found[m.key].strong):
                    found[m.key] = m
        return list(found.values())

    def _may_name(self, caption: str) -> bool:
        """A quick look before the full reading: does any capitalised word of the caption start with a first
        name? Most web captions name nobody and stop here."""
        firsts = self.lex.first_names
        for word in _WORD_SPLIT.split(caption):
            if word[:1].isupper():
                w = word.strip(_PUNCTUATION)
                if "-" in w:
                    w = w.split("-")[0]
                if fold(w[:-2] if w[-2:] in ("'s", "\u2019s") else w) in firsts:
                    return True
        return False

    def _runs(self, toks: list[_Tok]):
        """(start, end) of each run of capitalised words (particles allowed inside), split at punctuation, the
        end of a sentence and possessives."""
        kind = self.lex.kind
        start = None
        for i, t in enumerate(toks):
            joins = t.gap == JOIN and start is not None and not toks[i - 1].ends and not toks[i - 1].poss
            member = t.cap or (kind(t.f) == "particle" and start is not None)
            if start is not None and (not joins or not member):
                yield from self._trimmed(toks, start, i)
                start = None
            if member and start is None and t.cap:
                start = i
        if start is not None:
            yield from self._trimmed(toks, start, len(toks))

    def _trimmed(self, toks, start, end):
        while end > start and not toks[end - 1].cap:
            end -= 1
        if end > start:
            yield start, end

    def _names_in_run(self, toks: list[_Tok], start: int, end: int, informative: bool):
        lex = self.lex
        i, titled = start, False
        while i < end:
            t = toks[i]
            k = lex.kind(t.f)
            if k == "title":
                titled, i = True, i + 1
                continue
            if not self._first_name(t) or k in ("stop", "head", "product") or t.initial:
                titled, i = False, i + 1
                continue
            j, parts = self._surname(toks, i, end, informative)
            if j is None:
                titled, i = False, i + 1
                continue
            mention = self._judge(toks, i, j, parts, end, informative, titled)
            if mention == "entity":  # a place or organisation named after someone: the rest of the run is it
                return
            if mention is not None:
                yield mention
            titled, i = False, j

    def _first_name(self, t: _Tok) -> bool:
        """A first name of the lexicon, or a hyphenated one that starts with one ("Lin-Manuel", "Jean-Luc")."""
        if t.f in self.lex.first_names:
            return True
        head, _, rest = t.text.partition("-")
        return bool(rest) and rest[:1].isupper() and fold(head) in self.lex.first_names

    def _surname(self, toks: list[_Tok], i: int, end: int, informative: bool) -> tuple[int | None, list[_Tok]]:
        """The tokens of the name that starts with the first name at i, and where it ends (None: no surname)."""
        lex = self.lex
        parts, words, j = [toks[i]], 0, i + 1
        if toks[i].poss or toks[i].ends:
            return None, parts
        while j < end and words < MAX_SURNAME_WORDS:
            u = toks[j]
            k = lex.kind(u.f)
            if u.initial and words == 0:
                parts.append(u)
            elif k == "particle" and not u.cap or (k == "particle" and j + 1 < end and words == 0):
                parts.append(u)
            elif k == "suffix":
                if words:  # "Martin Luther King Jr.", not "Elizabeth II"
                    parts.append(u)
                    j += 1
                break
            elif not u.cap or u.glued or k in ("stop", "product") or (k == "head" and words):
                break
            elif words and (not informative or k == "place" or (u.f in lex.first_names and j + 1 < end
                                                                 and toks[j + 1].cap and not toks[j + 1].initial)
                            or (u.f in lex.common_words and j + 1 < end and lex.kind(toks[j + 1].f) != "suffix")):
                # A further surname word must look like one: not in ALL CAPS or Title Case, not a place; a first
                # name and a surname start the next person; a common word only ends a name ("Jada Pinkett
                # Smith", "Martin Luther King Jr."), never leads on ("Alice Moreno Wins Best Actress").
                break
            else:
                parts.append(u)
                words += 1
            j += 1
            if u.poss or u.ends:
                break
        if not words:
            return None, parts
        while parts and lex.kind(parts[-1].f) == "particle":  # "Alice van" is not a name
            parts.pop()
            j -= 1
        return j, parts

    def _judge(self, toks, i, j, parts, end, informative, titled):
        """The mention the name parts make, None when they are not a person, "entity" when the run names a place
        or organisation after a person."""
        lex = self.lex
        first = parts[0]
        words = [p for p in parts[1:] if not p.initial and lex.kind(p.f) not in ("particle", "suffix")]
        if not words:
            return None
        last = words[-1]
        after = toks[j] if j < len(toks) else None
        if after is not None and not parts[-1].poss and not parts[-1].ends:
            if lex.kind(after.f) == "product":
                return None
            if after.gap == JOIN and lex.kind(after.f) == "place" and after.cap:
                return None  # "SAN FRANCISCO CALIFORNIA", "Alice Springs Australia"
            for a in range(j, min(end, j + ENTITY_LOOKAHEAD)):
                ka = lex.kind(toks[a].f)
                if ka == "head":
                    return "entity"  # "George Washington Bridge", "Alice Moreno High School"
                if ka == "stop" or toks[a].poss or toks[a].ends:
                    break  # "Alice Moreno In The Studio"
        if i > 0 and toks[i].gap == JOIN and lex.kind(toks[i - 1].f) == "prefix":
            return None  # "Santa Monica Pier", "SAN FRANCISCO"
        if lex.kind(last.f) == "head" and (first.f in lex.common_words or lex.kind(first.f) == "place"
                                           or last.f not in _HEAD_SURNAMES):
            return None  # "Rose Garden", "Victoria Park", "Clinton Foundation"; but "Doris Day", "Jimin Park"
        place = lex.kind(last.f) == "place"
        if place:
            before = toks[i - 1].f if i > 0 else ""
            if lex.kind(first.f) == "place" or before in _LOCATIVE:
                return None  # "Paris France", "in Florence Italy"
        keyed = [p for p in parts if not p.initial and lex.kind(p.f) != "suffix"]
        key = " ".join(p.f.replace("-", " ") for p in keyed)
        joined = key.replace(" ", "_").split("_")
        if any(lex.kind("_".join(joined[:n])) == "brand" for n in range(2, len(joined) + 1)):
            return None  # "Calvin Klein", "Mercedes Benz S-Class"
        strong = informative or titled or (first.f not in lex.common_words and lex.kind(first.f) != "place"
                                           and not place and all(w.f not in lex.common_words for w in words))
        return Mention(key=key, form=" ".join(p.text for p in parts if lex.kind(p.f) != "suffix"), strong=strong)

    def _reversed_names(self, toks: list[_Tok]):
        """'Moreno, Alice' and 'MORENO Alice' (at the start of the caption or after punctuation): (mention, index
        of the surname)."""
        lex = self.lex
        n = len(toks)
        all_caps = all(t.upper for t in toks if len(t.text) > 1)
        for a in range(n - 1):
            s, f = toks[a], toks[a + 1]
            ks = lex.kind(s.f)
            if not s.cap or s.poss or s.ends or s.initial or s.glued or ks in ("stop", "particle", "product",
                                                                               "prefix", "place", "brand"):
                continue
            if f.f not in lex.first_names or f.upper or not f.cap or f.glued or lex.kind(f.f) not in (None, "place"):
                continue
            if not (a == 0 or s.gap == BREAK or toks[a - 1].ends):
                continue
            follows = toks[a + 2] if a + 2 < n else None
            closes = follows is None or f.ends or follows.gap == BREAK  # "Kumar, Diego." "KING, Matteo - actor"
            if follows is not None and follows.gap == JOIN and follows.cap and not follows.initial and not f.ends:
                continue  # "Moreno, Alice Smith": Alice Smith is the name
            often = lex.first_names.get(s.f, 0)  # a surname may be a first name too ("Moreno", "Kumar")
            rare = often <= RARE_FIRST_NAME and lex.first_names[f.f] > often
            if f.gap == COMMA and (ks is None or s.upper) and (s.upper or closes or rare):
                strong = s.upper or s.f not in lex.common_words  # "Green, Thabo." counts where Thabo Green does
            elif f.gap == JOIN and s.upper and not all_caps and ks is None:
                strong = True
            else:
                continue
            surname = title_case(s.text) if s.upper else s.text
            yield Mention(key=f"{f.f} {s.f.replace('-', ' ')}", form=f"{f.text} {surname}", strong=strong), a


def title_case(form: str) -> str:
    """A name written in capitals, as a name: 'ALICE VAN DER BERG' -> 'Alice van der Berg', 'O'BRIEN' ->
    "O'Brien", 'MCDONALD' -> 'McDonald'."""
    lex = lexicon()
    out = []
    for i, word in enumerate(form.split()):
        if i and lex.kind(fold(word)) == "particle":
            out.append(word.lower())
            continue
        w = "-".join(part[:1].upper() + part[1:].lower() for part in word.split("-"))
        w = re.sub(r"(['\u2019])(\w)", lambda m: m.group(1) + m.group(2).upper(), w)
        if len(w) > 3 and w[:2] == "Mc":
            w = "Mc" + w[2].upper() + w[3:]
        out.append(w)
    return " ".join(out)
