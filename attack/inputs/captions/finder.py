"""The name finder a process uses: the rules, or a user's model folder (`--ner-model`). Each worker process
builds its own once (a spaCy pipeline or the word lists are not sent between processes)."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=4)
def make_extractor(ner_model: str | None):
    if ner_model:
        from idia.attack.inputs.captions.ner import load_ner
        return load_ner(ner_model)
    from idia.attack.inputs.captions.extract import RuleExtractor
    return RuleExtractor()
