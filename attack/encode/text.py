"""Text encoding that is exact and fast: prompts tokenized piecewise, text batches trimmed to their longest prompt.

Text is the expensive side of an IDIA (21 templates x 1,000 names). open_clip's text tower is causal and pools at
the end-of-text token, so positions after a batch's longest prompt cannot change any embedding: we run each batch
trimmed to its longest tokenized prompt instead of the full context (exact, and several times faster).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch


def can_trim(model: torch.nn.Module) -> bool:
    """Trimming is exact only for open_clip's own causal text tower pooled at the end-of-text token."""
    import open_clip
    return (isinstance(model, open_clip.CLIP) and getattr(model, "attn_mask", None) is not None
            and getattr(model, "text_pool_type", "argmax") in ("argmax", "eos", "first"))


def encode_text_trimmed(model, tokens: torch.Tensor) -> torch.Tensor:
    from open_clip.transformer import text_global_pool
    length = int((tokens != 0).sum(dim=1).max())
    tokens = tokens[:, :length]
    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast) + model.positional_embedding[:length].to(cast)
    x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
    x = model.ln_final(x)
    x = text_global_pool(x, tokens, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None))
    if model.text_projection is not None:
        x = model.text_projection(x) if isinstance(model.text_projection, torch.nn.Linear) else x @ model.text_projection
    return x


def tokenize_prompts(tokenizer, templates: Sequence[str], names: Sequence[str]) -> torch.Tensor:
    """Token ids of every prompt (template-major, as `prompts.fill` orders them), tokenizing each template's
    text and each name once instead of 21,000 whole prompts.

    open_clip's BPE tokenizer cleans and splits text into words and encodes word by word, so a prompt's ids are
    its template prefix's, the name's and the suffix's in a row whenever the name stands apart from the
    template's words. That is checked on a sample of prompts (and every template); on any difference, or for
    another tokenizer, every prompt is tokenized whole."""
    from open_clip.tokenizer import SimpleTokenizer

    from idia.attack.inputs.prompts import fill
    if not isinstance(tokenizer, SimpleTokenizer) or tokenizer.reduction_fn is not None or not names:
        return tokenizer(fill(templates, names))
    out = assemble_prompt_tokens(tokenizer, templates, names)
    rng = np.random.default_rng(0)
    sample = sorted(set(rng.choice(len(out), size=min(len(out), 256), replace=False).tolist())
                    | {t * len(names) for t in range(len(templates))})
    texts = fill(templates, names)
    if not torch.equal(tokenizer([texts[i] for i in sample]), out[sample]):
        return tokenizer(texts)
    return out


def assemble_prompt_tokens(tokenizer, templates: Sequence[str], names: Sequence[str]) -> torch.Tensor:
    """[sot] + template prefix + name + template suffix + [eot], truncated as open_clip truncates."""
    ctx = tokenizer.context_length
    sot, eot = tokenizer.sot_token_id, tokenizer.eot_token_id
    parts = [t.split("{0}") for t in templates]
    pre = [tokenizer.encode(a) for a, _ in parts]
    post = [tokenizer.encode(b) for _, b in parts]
    name_ids = [tokenizer.encode(n) for n in names]
    out = torch.zeros(len(templates) * len(names), ctx, dtype=torch.long)
    for t in range(len(templates)):
        for c, ids in enumerate(name_ids):
            row = [sot] + pre[t] + ids + post[t] + [eot]
            if len(row) > ctx:
                row = row[:ctx]
                row[-1] = eot
            out[t * len(names) + c, :len(row)] = torch.tensor(row)
    return out




@dataclass
class PromptFit:
    """How the filled prompts fit the text context (`prompt_fit`)."""

    context: int
    cut: list[tuple[str, str, int]] = field(default_factory=list)  # (name, template, tokens) of people's names cut
    n_cut_others: int = 0  # other candidate names (distractors) cut in some prompt
    alike: list[tuple[str, str]] = field(default_factory=list)  # (person, other name) alike in every prompt


def prompt_fit(tokenizer, templates: Sequence[str], names: Sequence[str], people: Sequence[str]) -> PromptFit | None:
    """Which filled prompts are longer than the text context (open_clip cuts them at the end, so the model sees
    only the start of a long name), and which people's names become, cut, the same tokens as another candidate's
    in every prompt (the model then scores them identically: the test cannot tell them apart).

    For open_clip's BPE tokenizer, which encodes word by word: each template's prefix and suffix and each name
    are encoded once. None for other tokenizers (their cut is not reproduced here)."""
    from open_clip.tokenizer import SimpleTokenizer
    if not isinstance(tokenizer, SimpleTokenizer) or tokenizer.reduction_fn is not None or not templates:
        return None
    ctx = tokenizer.context_length
    parts = [t.split("{0}") for t in templates]
    pre = [tokenizer.encode(a) for a, _ in parts]
    post = [tokenizer.encode(b) for _, b in parts]
    room = [ctx - 2 - len(a) for a in pre]  # tokens left for name + suffix between start and end tokens
    fit = PromptFit(ctx)
    is_person = set(people)
    keys: dict[tuple, list[str]] = {}
    for name in dict.fromkeys([*people, *names]):
        ids = tokenizer.encode(name)
        over = [j for j in range(len(templates)) if len(ids) + len(post[j]) > room[j]]
        if over and name in is_person:
            j = max(over, key=lambda j: len(ids) + len(post[j]) - room[j])
            fit.cut.append((name, templates[j], 2 + len(pre[j]) + len(ids) + len(post[j])))
        elif over:
            fit.n_cut_others += 1
        if over:  # what the model sees of this name in every prompt
            keys.setdefault(tuple(tuple((ids + post[j])[:max(room[j], 0)]) for j in range(len(templates))),
                            []).append(name)
    for group in keys.values():
        for person in (n for n in group if n in is_person):
            other = next((n for n in group if n != person), None)
            if other is not None:
                fit.alike.append((person, other))
    return fit
