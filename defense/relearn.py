"""The relearning probe: does suppressed knowledge come back after a little ordinary fine-tuning?

Machine-unlearning work finds that forgetting is often shallow: a few steps of training on unrelated data bring
the forgotten back. Here the defended model is fine-tuned on clean data that names none of the redacted people,
towards what the undefended model made of that same data: for a text redaction, clean captions (the bundled
corpus minus every caption naming a redacted person) and their undefended text embeddings; for an image redaction,
the photos the defense kept (other people's) and their undefended image embeddings. Nothing in this data carries
a redacted name or face, so whatever identification returns was hidden, not removed. Snapshots at a few step
counts are attacked again by the verification.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from idia.attack.model.adapter import LoadedModel
from idia.attack.model.device import autocast
from idia.defense.redact import _name_pattern, bundled_captions, text_parameter_names
from idia.defense.redact_image import image_parameter_names, load_pixels
from idia.defense.training import encode_text_features, state_sha256
from idia.errors import InputError

DEFAULT_STEPS = (25, 50, 100)


def clean_captions_without(names: Sequence[str], captions: Sequence[str] | None = None) -> list[str]:
    pattern = _name_pattern(list(names))
    return [c for c in (captions if captions is not None else bundled_captions()) if not pattern.search(c)]


def relearn(defended: LoadedModel, original: LoadedModel, names: Sequence[str], steps: Sequence[int] = DEFAULT_STEPS,
            towers: Sequence[str] = ("text",), images: Sequence[Path] = (), captions: Sequence[str] | None = None,
            lr: float = 1e-4, batch: int = 64, seed: int = 0, precision: str = "fp32") -> Iterator[tuple[int, LoadedModel]]:
    """Yields (steps taken, the fine-tuned model) at each count in `steps`; `defended` is left unchanged."""
    steps = sorted({int(s) for s in steps})
    if not steps or steps[0] < 1:
        raise InputError(f"relearning step counts must be whole numbers >= 1, got {list(steps)}")
    clean = clean_captions_without(names, captions)
    if "text" in towers and not clean:
        raise InputError("no clean captions left to relearn on once those naming a redacted person are dropped")
    if "image" in towers and not images:
        raise InputError("relearning the image tower needs clean photos")
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    student = copy.deepcopy(defended.model).eval()
    teacher = original.model
    device = next(student.parameters()).device
    trainable = set()
    if "text" in towers:
        trainable |= set(text_parameter_names(student))
    if "image" in towers:
        trainable |= set(image_parameter_names(student))
    for n, p in student.named_parameters():
        p.requires_grad_(n in trainable)
    opt = torch.optim.AdamW([p for n, p in student.named_parameters() if n in trainable], lr=lr, weight_decay=0.0)
    pixels = load_pixels(original, list(images)) if "image" in towers else None
    tok = original.tokenizer
    for step in range(1, steps[-1] + 1):
        loss = torch.zeros((), device=device)
        with autocast(device, precision):
            if "text" in towers:
                batch_caps = [clean[i] for i in rng.integers(len(clean), size=batch)]
                tokens = tok(batch_caps).to(device)
                with torch.no_grad():
                    target = encode_text_features(teacher, tokens).float()
                loss = loss + (1 - (encode_text_features(student, tokens).float() * target).sum(-1)).mean()
            if "image" in towers:
                px = pixels[rng.integers(len(pixels), size=min(batch, len(pixels)))].to(device)
                with torch.no_grad():
                    target = torch.nn.functional.normalize(teacher.encode_image(px).float(), dim=-1)
                got = torch.nn.functional.normalize(student.encode_image(px).float(), dim=-1)
                loss = loss + (1 - (got * target).sum(-1)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step in steps:
            snap = copy.deepcopy(student)
            for p in snap.parameters():
                p.requires_grad_(False)
            sha = state_sha256(snap)
            yield step, LoadedModel(model=snap, preprocess=defended.preprocess, tokenizer=defended.tokenizer,
                                    source=f"{defended.source} (relearnt {step} steps)", checkpoint=None,
                                    checkpoint_sha256=sha, model_cfg=defended.model_cfg,
                                    preprocess_cfg=defended.preprocess_cfg,
                                    image_identity=sha if "image" in towers else defended.image_identity)
