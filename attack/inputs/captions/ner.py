"""A user's own named-entity model instead of the rules (`--ner-model DIR`): a spaCy pipeline folder (it holds
config.cfg and meta.json) or a GLiNER model folder (gliner_config.json). Loaded from that folder only: nothing is
downloaded, no package name is looked up, and neither library is an idia dependency (install the one you use).

The model's PERSON (spaCy: PERSON or PER; GLiNER: the label "person") spans become mentions like the rules':
titles and possessives are dropped, the key is the same, and a name of one word is not counted (a first name
alone says nothing about who). Every mention of a model is strong: it read the whole sentence.
"""

from __future__ import annotations

from pathlib import Path

from idia.attack.inputs.captions.extract import Mention
from idia.attack.inputs.captions.lexicon import fold, lexicon
from idia.errors import InputError

SPACY_LABELS = ("PERSON", "PER")
GLINER_LABELS = ["person"]
GLINER_THRESHOLD = 0.5


def model_kind(folder: Path) -> str:
    """'spacy' or 'gliner', from the files in the folder; a folder that is neither is an InputError."""
    if not folder.is_dir():
        raise InputError(f"{folder}: --ner-model must be a folder holding a spaCy pipeline or a GLiNER model")
    if (folder / "config.cfg").is_file() and (folder / "meta.json").is_file():
        return "spacy"
    if (folder / "gliner_config.json").is_file():
        return "gliner"
    raise InputError(f"{folder}: not a spaCy pipeline (config.cfg and meta.json) or a GLiNER model "
                     "(gliner_config.json)")


def span_mention(text: str) -> Mention | None:
    """A model's person span as a mention: titles and possessives dropped, one-word names left out."""
    lex = lexicon()
    words = [w.strip(".,;:()[]\"'") for w in text.replace("\u2019", "'").split()]
    words = [w[:-2] if w.lower().endswith("'s") else w for w in words if w]
    while words and lex.kind(fold(words[0])) == "title":
        words = words[1:]
    words = [w for w in words if len(w) > 1 and lex.kind(fold(w)) != "suffix"]
    if len(words) < 2:
        return None
    return Mention(key=" ".join(fold(w).replace("-", " ") for w in words), form=" ".join(words), strong=True)


class SpacyExtractor:
    name = "spacy"

    def __init__(self, folder: Path):
        try:
            import spacy
        except ImportError:
            raise InputError(f"{folder}: a spaCy pipeline needs spaCy, which is not installed (pip install spacy)") \
                from None
        try:
            self.nlp = spacy.load(folder)  # a path: loaded from disk, never by package name
        except Exception as e:  # noqa: BLE001 -- spaCy raises many kinds for a broken pipeline
            raise InputError(f"{folder}: cannot load this spaCy pipeline ({str(e).splitlines()[0]})") from None
        self.folder = folder

    def describe(self) -> dict:
        meta = getattr(self.nlp, "meta", {}) or {}
        return {"extractor": self.name, "model": str(self.folder), "model_name": meta.get("name"),
                "model_version": meta.get("version")}

    def extract(self, caption: str) -> list[Mention]:
        found: dict[str, Mention] = {}
        for ent in self.nlp(caption).ents:
            if ent.label_ in SPACY_LABELS:
                m = span_mention(ent.text)
                if m is not None:
                    found.setdefault(m.key, m)
        return list(found.values())


class GlinerExtractor:
    name = "gliner"

    def __init__(self, folder: Path):
        try:
            from gliner import GLiNER
        except ImportError:
            raise InputError(f"{folder}: a GLiNER model needs gliner, which is not installed (pip install gliner)") \
                from None
        try:
            self.model = GLiNER.from_pretrained(str(folder), local_files_only=True)
        except Exception as e:  # noqa: BLE001
            raise InputError(f"{folder}: cannot load this GLiNER model ({str(e).splitlines()[0]})") from None
        self.folder = folder

    def describe(self) -> dict:
        return {"extractor": self.name, "model": str(self.folder), "threshold": GLINER_THRESHOLD}

    def extract(self, caption: str) -> list[Mention]:
        found: dict[str, Mention] = {}
        for ent in self.model.predict_entities(caption, GLINER_LABELS, threshold=GLINER_THRESHOLD):
            m = span_mention(ent["text"])
            if m is not None:
                found.setdefault(m.key, m)
        return list(found.values())


def load_ner(folder: str | Path):
    folder = Path(folder)
    return SpacyExtractor(folder) if model_kind(folder) == "spacy" else GlinerExtractor(folder)
