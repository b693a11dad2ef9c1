"""Encoding: each image once, each prompt once, and prompt embeddings cached on disk by what determines them.

Text is the expensive side of an IDIA (21 templates x 1,000 names). open_clip's text tower is causal and pools at
the end-of-text token, so positions after a batch's longest prompt cannot change any embedding: we run each batch
trimmed to its longest tokenized prompt instead of the full context (exact, and several times faster).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .io import atomic_write_bytes, canonical_json, sha256_text
from .models import LoadedModel
from .people import load_rgb

TEXT_CACHE_VERSION = 1


def default_cache_dir() -> Path:
    return Path(os.environ.get("IDIA_CACHE_DIR", Path.home() / ".cache" / "idia"))


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

    from .prompts import fill
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


@torch.no_grad()
def encode_texts(loaded: LoadedModel, texts: Sequence[str], batch_size: int = 512, trim: bool = True,
                 progress: bool = True, desc: str = "encode prompts", tokens: torch.Tensor | None = None) -> np.ndarray:
    """L2-normalised text embeddings, float32, in input order. Batches of similar length share a pass.
    `tokens` may carry the texts' token ids already (see `tokenize_prompts`)."""
    model = loaded.model
    tokens = loaded.tokenizer(list(texts)) if tokens is None else tokens
    lengths = (tokens != 0).sum(dim=1)
    order = torch.argsort(lengths, stable=True) if trim else torch.arange(len(texts))
    out = torch.empty(len(texts), _embed_dim(loaded))
    trim = trim and can_trim(model)
    device = next(model.parameters()).device
    for start in tqdm(range(0, len(texts), batch_size), desc=desc, disable=not progress, unit="batch"):
        idx = order[start:start + batch_size]
        batch = tokens[idx].to(device)
        feats = encode_text_trimmed(model, batch) if trim else model.encode_text(batch)
        out[idx] = torch.nn.functional.normalize(feats.float(), dim=-1).cpu()
    return out.numpy()


# Image embeddings already computed in this process, by image tower (LoadedModel.image_identity) and by the
# photo's SHA-256: an audit's attack, the verification's attacks before and after a redaction (same image
# tower), a perturbation sweep's rows and the utility task then encode each photo once.
_IMAGE_MEMO: "OrderedDict[str, dict[str, np.ndarray]]" = OrderedDict()
_IMAGE_MEMO_TOWERS = 4


def forget_image_embeddings() -> None:
    """Empty the in-process image memo (benchmarks time a cold start with it)."""
    _IMAGE_MEMO.clear()


@torch.no_grad()
def encode_images(loaded: LoadedModel, paths: Sequence[Path], batch_size: int = 64, progress: bool = True,
                  desc: str = "encode photos", sha256s: Sequence[str] | None = None) -> np.ndarray:
    """L2-normalised image embeddings after the model's own open_clip preprocessing. With the photos' SHA-256s
    given, photos this image tower has already encoded in this process are not encoded again."""
    out = np.empty((len(paths), _embed_dim(loaded)), dtype=np.float32)
    memo: dict[str, np.ndarray] = {}
    if sha256s is not None:
        tower = f"{loaded.image_identity}:{loaded.config_sha256}"
        memo = _IMAGE_MEMO.setdefault(tower, {})
        _IMAGE_MEMO.move_to_end(tower)
        while len(_IMAGE_MEMO) > _IMAGE_MEMO_TOWERS:
            _IMAGE_MEMO.popitem(last=False)
    todo = []
    for i in range(len(paths)):
        if sha256s is not None and sha256s[i] in memo:
            out[i] = memo[sha256s[i]]
        else:
            todo.append(i)
    device = next(loaded.model.parameters()).device
    for start in tqdm(range(0, len(todo), batch_size), desc=desc, disable=not progress, unit="batch"):
        chunk = todo[start:start + batch_size]
        pixels = torch.stack([loaded.preprocess(load_rgb(Path(paths[i]))) for i in chunk]).to(device)
        feats = loaded.model.encode_image(pixels)
        out[chunk] = torch.nn.functional.normalize(feats.float(), dim=-1).cpu().numpy()
        if sha256s is not None:
            memo.update((sha256s[i], out[i].copy()) for i in chunk)
    return out


def _embed_dim(loaded: LoadedModel) -> int:
    return int(loaded.model_cfg["embed_dim"])


class TextCache:
    """Prompt embeddings on disk, keyed by (model weights, templates, candidates).

    One .npy per key; written atomically, so an interrupted run leaves either a whole entry or none."""

    def __init__(self, directory: str | Path | None = None):
        self.directory = Path(directory) if directory is not None else default_cache_dir() / "text"

    def key(self, loaded: LoadedModel, templates: Sequence[str], names: Sequence[str]) -> str:
        return sha256_text(canonical_json({"v": TEXT_CACHE_VERSION, "model": loaded.identity,
                                           "config": loaded.config_sha256, "templates": list(templates),
                                           "names": list(names)}))

    def get_or_compute(self, loaded: LoadedModel, templates: Sequence[str], names: Sequence[str],
                       progress: bool = True) -> tuple[np.ndarray, bool]:
        """(embeddings [n_templates, n_names, dim], whether they came from the cache)."""
        from .prompts import fill
        path = self.directory / f"{self.key(loaded, templates, names)}.npy"
        if path.is_file():
            try:
                cached = np.load(path, allow_pickle=False)
                if cached.shape[:2] == (len(templates), len(names)):
                    return cached, True
            except (ValueError, OSError):
                pass  # a damaged entry is recomputed and replaced
        flat = encode_texts(loaded, fill(templates, names), progress=progress,
                            tokens=tokenize_prompts(loaded.tokenizer, templates, names))
        emb = flat.reshape(len(templates), len(names), -1)
        import io
        buf = io.BytesIO()
        np.save(buf, emb, allow_pickle=False)
        atomic_write_bytes(path, buf.getvalue())
        return emb, False
