"""Utility: what a defense costs the model's ordinary use, as zero-shot top-1 accuracy on a labelled folder.

A folder holds one sub-folder of images per class, named by the class label ("red circle"); each class is
described by a prompt ("a photo of a {label}") and an image is classified as its most similar prompt. For the
synthetic world this is `shapes/`. Images are encoded once, so several perturbations can be scored cheaply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from idia.attack.encode.encoder import Encoder
from idia.attack.inputs.people import scan_people
from idia.attack.model.adapter import LoadedModel
from idia.errors import InputError

DEFAULT_PROMPT = "a photo of a {label}"


def check_prompt(prompt: str) -> str:
    rest = prompt.replace("{label}", "")
    if prompt.count("{label}") != 1 or "{" in rest or "}" in rest:
        raise InputError(f"utility prompt needs exactly one '{{label}}' and no other braces: {prompt!r}")
    return prompt


@dataclass
class ZeroShotTask:
    """A labelled folder, encoded by one model: the class prompts' and the images' embeddings."""

    folder: Path
    prompt: str
    labels: list[str]
    image_label: np.ndarray  # [n_images] class index of each image
    image_emb: np.ndarray  # [n_images, D]
    text_emb: np.ndarray  # [n_classes, D]

    @classmethod
    def encode(cls, loaded: LoadedModel, folder: str | Path, prompt: str = DEFAULT_PROMPT,
               progress: bool = False, encoder: Encoder | None = None) -> "ZeroShotTask":
        """`encoder` brings the device, precision and caches (default: the model's device, the default cache)."""
        folder = Path(folder)
        check_prompt(prompt)
        notes: list[str] = []
        classes = [c for c in scan_people(folder, warn=notes.append) if c.auditable]
        if len(classes) < 2:
            raise InputError(f"{folder}: a zero-shot task needs at least two class folders with images")
        labels = [c.name for c in classes]
        paths = [ph.path for c in classes for ph in c.photos]
        hashes = [ph.sha256 for c in classes for ph in c.photos]
        owner = np.array([i for i, c in enumerate(classes) for _ in c.photos], dtype=np.int64)
        if encoder is None:
            encoder = Encoder(loaded, device=str(next(loaded.model.parameters()).device), progress=progress)
        elif encoder.loaded is not loaded:  # a defended copy of the model, with the same runtime settings
            encoder = encoder.with_model(loaded)
        text = encoder.encode_texts([prompt.format(label=lab) for lab in labels], desc="encode utility prompts")
        images = encoder.encode_photos(paths, hashes, desc="encode utility images")
        return cls(folder, prompt, labels, owner, images, text)

    def correct(self, perturbation=None) -> np.ndarray:
        """Per image: is its top-1 class the right one (optionally through an inference-time perturbation)?"""
        image, text = self.image_emb, self.text_emb
        if perturbation is not None:
            image = perturbation.transform_image(image)
            text = perturbation.transform_text(text[None])[0]
        return np.argmax(image @ text.T, axis=1) == self.image_label

    def top1(self, perturbation=None) -> float:
        """Top-1 accuracy, optionally through an inference-time perturbation (the attack's protocol)."""
        return float(np.mean(self.correct(perturbation)))

    def summary(self, top1: float) -> dict:
        return {"task": f"zero-shot top-1 on {self.folder} ({self.prompt!r})", "n_images": int(len(self.image_label)),
                "n_classes": len(self.labels), "top1": top1}


Z95 = 1.959963984540054  # the standard normal's 97.5% quantile


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval for k successes in n trials."""
    if n == 0:
        return (0.0, 1.0)
    p, z2 = k / n, z * z
    centre, half = (p + z2 / (2 * n)) / (1 + z2 / n), z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def paired_change(before: np.ndarray, after: np.ndarray, z: float = Z95) -> dict:
    """Top-1 before and after on the same images, each with its 95% Wilson interval, and the change (after minus
    before) with Agresti and Min's interval for a difference of paired proportions (2005: the Wald interval of
    the discordant pairs after adding 1/2 to each cell of the 2x2 table; never of zero width, unlike the plain
    Wald or Newcombe's hybrid when no image changes)."""
    before, after = np.asarray(before, bool), np.asarray(after, bool)
    n = len(before)
    lost, gained = int(np.sum(before & ~after)), int(np.sum(~before & after))
    p1, p2 = float(np.mean(before)) if n else 0.0, float(np.mean(after)) if n else 0.0
    b, c, m = lost + 0.5, gained + 0.5, n + 2
    centre, se = (c - b) / m, math.sqrt(max(0.0, (b + c) - (c - b) ** 2 / m)) / m
    return {"top1_before": p1, "top1_after": p2, "top1_before_ci95": list(wilson(int(before.sum()), n, z)),
            "top1_after_ci95": list(wilson(int(after.sum()), n, z)), "change": p2 - p1,
            "change_ci95": [max(-1.0, centre - z * se), min(1.0, centre + z * se)],
            "images_lost": lost, "images_gained": gained,
            "ci_method": "Wilson score intervals; the change's by Agresti and Min (2005) for paired proportions"}


def zero_shot_accuracy(loaded: LoadedModel, folder: str | Path, prompt: str = DEFAULT_PROMPT, perturbation=None,
                       progress: bool = False) -> dict:
    """{task, n_images, n_classes, top1} of the model (through `perturbation`, if given) on a labelled folder."""
    task = ZeroShotTask.encode(loaded, folder, prompt, progress)
    return task.summary(task.top1(perturbation))
