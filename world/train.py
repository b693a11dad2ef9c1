"""Train the synthetic world's tiny CLIP contrastively on the CPU.

The training set is fixed: each member's training photos (as many as the world says they occur) with captions
naming them, plus captioned shape pictures. Non-members never appear. Captions are re-drawn from the caption
variants every epoch, photos get a small random shift and zoom, nothing else.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import asdict, dataclass
from importlib import resources

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from idia.attack.model.load import instantiate
from idia.attack.model.tokenizer import make_tokenizer
from idia.world.world import World, training_pairs

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class TrainSpec:
    steps: int = 1200
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.1
    warmup_steps: int = 40
    seed: int = 0
    threads: int = 2

    def to_dict(self) -> dict:
        return asdict(self)


def default_config() -> dict:
    """The tiny CLIP's architecture: data, shipped as package data."""
    text = resources.files("idia.world").joinpath("configs", "tiny-clip.json").read_text(encoding="utf-8")
    return json.loads(text)


def _tensorize(world: World, tokenizer, progress: bool):
    images, captions = [], []
    total = sum(p.n_train_images for p in world.members) + world.spec.n_shape_images
    for image, variants in tqdm(training_pairs(world), total=total, desc="render training set", disable=not progress):
        images.append(torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1))
        captions.append(variants)
    n_var = max(len(v) for v in captions)
    flat = [v[i % len(v)] for v in captions for i in range(n_var)]
    tokens = tokenizer(flat).view(len(captions), n_var, -1)
    return torch.stack(images), tokens


def _augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A small random shift and zoom, per image."""
    n = batch.shape[0]
    scale = 1.0 + (torch.rand(n, generator=generator) - 0.5) * 0.12
    shift = (torch.rand(n, 2, generator=generator) - 0.5) * 0.12
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = scale
    theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    return F.grid_sample(batch, grid, padding_mode="border", align_corners=False)


@contextlib.contextmanager
def _threads(n: int):
    """torch's intra-op thread count set for the training (the shipped checkpoint's bytes depend on it), and
    restored afterwards: the caller's process keeps its own setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _optimizer(model: torch.nn.Module, spec: TrainSpec) -> torch.optim.Optimizer:
    """AdamW as open_clip trains: weight decay on matrices, none on gains, biases and embeddings."""
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": spec.weight_decay},
                              {"params": rest, "weight_decay": 0.0}], lr=spec.lr, betas=(0.9, 0.98), eps=1e-6)


def _lr_at(spec: TrainSpec, step: int) -> float:
    """Linear warm-up, then a cosine decay to zero."""
    if step < spec.warmup_steps:
        return spec.lr * (step + 1) / spec.warmup_steps
    done = (step - spec.warmup_steps) / max(1, spec.steps - spec.warmup_steps)
    return spec.lr * 0.5 * (1 + math.cos(math.pi * done))


def _batches(images: torch.Tensor, tokens: torch.Tensor, spec: TrainSpec):
    """(pixels, caption tokens) batches: epochs of a seeded permutation, one of each image's captions drawn,
    normalised and augmented. Every draw comes from one CPU generator, so batches are the same on any device."""
    mean = torch.tensor(OPENAI_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_STD).view(1, 3, 1, 1)
    gen = torch.Generator().manual_seed(spec.seed)
    n = images.shape[0]
    order, cursor = torch.randperm(n, generator=gen), 0
    while True:
        if cursor + spec.batch_size > n:
            order, cursor = torch.randperm(n, generator=gen), 0
        idx = order[cursor:cursor + spec.batch_size]
        cursor += spec.batch_size
        variant = torch.randint(tokens.shape[1], (len(idx),), generator=gen)
        pixels = (images[idx].float() / 255.0 - mean) / std
        yield _augment(pixels, gen), tokens[idx, variant]


def _train_steps(model: torch.nn.Module, batches, spec: TrainSpec, dev: torch.device, precision: str,
                 progress: bool) -> list[float]:
    """The contrastive training loop; returns the loss at every step."""
    from idia.attack.model.device import autocast
    opt = _optimizer(model, spec)
    losses = []
    bar = tqdm(range(spec.steps), desc="train tiny CLIP", disable=not progress)
    for step, (pixels, text) in zip(bar, batches):
        for group in opt.param_groups:
            group["lr"] = _lr_at(spec, step)
        with autocast(dev, precision):
            img_f, txt_f, logit_scale = model(pixels.to(dev), text.to(dev))[:3]
            logits = (logit_scale * img_f @ txt_f.t()).float()
        target = torch.arange(len(text), device=dev)
        loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        losses.append(float(loss.detach()))
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    return losses


def train_world_model(world: World, spec: TrainSpec = TrainSpec(), model_cfg: dict | None = None,
                      progress: bool = True, device: str = "cpu",
                      precision: str = "fp32") -> tuple[torch.nn.Module, dict, dict]:
    """Train a tiny CLIP on the world's members and shapes. Returns (model, model_cfg, training record).

    Random draws stay on the CPU generator whatever the device, so the batches are the same everywhere; the
    weights are byte-for-byte reproducible on the same CPU model in fp32 at the same thread count, within float
    tolerance on another CPU or device."""
    from idia.attack.model.device import resolve_device
    dev = resolve_device(device)
    model_cfg = model_cfg or default_config()
    with _threads(spec.threads):
        torch.manual_seed(spec.seed)
        t0 = time.perf_counter()
        images, tokens = _tensorize(world, make_tokenizer(model_cfg), progress)
        render_s = time.perf_counter() - t0
        model = instantiate(model_cfg).to(dev)
        model.train()
        t1 = time.perf_counter()
        losses = _train_steps(model, _batches(images, tokens, spec), spec, dev, precision, progress)
        train_s = time.perf_counter() - t1
    record = {
        "train_spec": spec.to_dict(),
        "n_training_images": int(images.shape[0]),
        "n_person_images": int(sum(p.n_train_images for p in world.members)),
        "render_seconds": round(render_s, 1),
        "train_seconds": round(train_s, 1),
        "images_per_second": round(spec.steps * spec.batch_size / max(train_s, 1e-9), 1),
        "loss_first": losses[0],
        "loss_last": float(np.mean(losses[-20:])),
        "loss_every_20_steps": [round(x, 4) for x in losses[::20]],
        "torch_version": torch.__version__,
        "device": str(dev),
        "precision": precision,
    }
    return model.cpu().eval(), model_cfg, record
