"""A model's tokenizer: open_clip's CLIP BPE, or the Hugging Face tokenizer its config names, read from the model
folder only (nothing is downloaded)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from idia.errors import InputError

STANDARD_VOCAB = 49408  # CLIP's BPE vocabulary: the one tokenizer idia feeds a text tower
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer_config.json", "spiece.model", "sentencepiece.bpe.model")


def make_tokenizer(model_cfg: dict, model_name: str | None = None, folder: str | Path | None = None) -> Callable:
    """open_clip's CLIP BPE tokenizer, or the Hugging Face tokenizer a config names when its files are in `folder`
    (read with local_files_only: nothing is downloaded)."""
    text_cfg = model_cfg.get("text_cfg", {})
    context_length = int(text_cfg.get("context_length", 77))
    if "hf_tokenizer_name" in text_cfg:
        if folder is None or not any((Path(folder) / n).is_file() for n in TOKENIZER_FILES):
            raise InputError(f"{model_name or 'model'}: its tokenizer ({text_cfg['hf_tokenizer_name']}) is not in "
                             f"the model folder ({', '.join(TOKENIZER_FILES)}) and idia does not download it")
        return hf_tokenizer(Path(folder), text_cfg, context_length)
    import open_clip
    return open_clip.tokenizer.SimpleTokenizer(context_length=context_length)


def _standard_bpe():
    import open_clip
    tok = open_clip.tokenizer.SimpleTokenizer()
    merges = [" ".join(pair) for pair, _ in sorted(tok.bpe_ranks.items(), key=lambda kv: kv[1])]
    # The same 49,408 tokens; transformers spells the two special ones the way OpenAI's release did.
    names = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}
    return {names.get(k, k): v for k, v in tok.encoder.items()}, merges


def check_tokenizer(folder: Path, text_cfg: dict) -> None:
    """Accept the folder's tokenizer only if it is CLIP's standard BPE (or absent): that is what idia feeds."""
    vocab = merges = None
    if (folder / "tokenizer.json").is_file():
        try:
            model = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8")).get("model", {})
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputError(f"{folder / 'tokenizer.json'}: not valid JSON ({e})") from None
        if model.get("type") != "BPE":
            raise InputError(f"{folder}: its tokenizer is a {model.get('type')} tokenizer, not CLIP's BPE; idia "
                             "supports the standard CLIP vocabulary only")
        vocab = model.get("vocab")
        merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    elif (folder / "vocab.json").is_file():
        try:
            vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputError(f"{folder / 'vocab.json'}: not valid JSON ({e})") from None
        if (folder / "merges.txt").is_file():
            lines = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
            merges = [ln for ln in lines if ln and not ln.startswith("#version")]
    if vocab is None:
        if int(text_cfg["vocab_size"]) != STANDARD_VOCAB:
            raise InputError(f"{folder}: no tokenizer files and a {text_cfg['vocab_size']}-token text tower; idia "
                             f"supports the standard {STANDARD_VOCAB:,}-token CLIP vocabulary only")
        return
    std_vocab, std_merges = _standard_bpe()
    if vocab != std_vocab or (merges is not None and merges != std_merges):
        what = "vocabulary" if vocab != std_vocab else "merges"
        raise InputError(f"{folder}: its tokenizer differs from the standard CLIP BPE ({what}: {len(vocab):,} "
                         f"tokens); idia supports the standard {STANDARD_VOCAB:,}-token CLIP vocabulary only")


def hf_tokenizer(folder: Path, text_cfg: dict, context_length: int):
    """A Hugging Face tokenizer read from the model folder only (an open_clip config's hf_tokenizer_name)."""
    try:
        from open_clip.tokenizer import HFTokenizer
        kwargs = dict(text_cfg.get("tokenizer_kwargs") or {})
        return HFTokenizer(str(folder), context_length=context_length, tokenizer_mode=text_cfg.get("tokenizer_mode"),
                           local_files_only=True, **kwargs)
    except ImportError:
        raise InputError(f"{folder}: its Hugging Face tokenizer needs transformers (pip install 'idia[hf]')") from None
    except (OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"{folder}: cannot read its tokenizer files ({first})") from None
