"""Utility: what a defense costs the model's ordinary use, as zero-shot top-1 accuracy on a labelled folder.

A folder holds one sub-folder of images per class, named by the class label ("red circle"); each class is
described by a prompt ("a photo of a {label}") and an image is classified as its most similar prompt. For the
synthetic world this is `shapes/`. Images are encoded once, so several perturbations can be scored cheaply.
"""

from __future__ import annotations

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

    def top1(self, perturbation=None) -> float:
        """Top-1 accuracy, optionally through an inference-time perturbation (the attack's protocol)."""
        image, text = self.image_emb, self.text_emb
        if perturbation is not None:
            image = perturbation.transform_image(image)
            text = perturbation.transform_text(text[None])[0]
        predicted = np.argmax(image @ text.T, axis=1)
        return float(np.mean(predicted == self.image_label))

    def summary(self, top1: float) -> dict:
        return {"task": f"zero-shot top-1 on {self.folder} ({self.prompt!r})", "n_images": int(len(self.image_label)),
                "n_classes": len(self.labels), "top1": top1}


def zero_shot_accuracy(loaded: LoadedModel, folder: str | Path, prompt: str = DEFAULT_PROMPT, perturbation=None,
                       progress: bool = False) -> dict:
    """{task, n_images, n_classes, top1} of the model (through `perturbation`, if given) on a labelled folder."""
    task = ZeroShotTask.encode(loaded, folder, prompt, progress)
    return task.summary(task.top1(perturbation))
