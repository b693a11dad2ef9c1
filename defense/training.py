"""What both redactors train with: the loss terms, the one training loop, and the hash a trained model will have.

NameRedactor (text tower) and FaceRedactor (image tower) differ only in what a step compares; the optimiser, the
schedule, the drift from the source and the record of each step are the same, so they are written once here. A
leaf: redact, redact_image, relearn and the estimator base import it, and it imports none of them.
"""

from __future__ import annotations

import hashlib
import time
from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm

DRIFT_NORMS = ("squared", "norm")

# A step's two terms, (redaction, utility), for step number `step`: the caller draws its batches and compares.
StepTerms = Callable[[int], tuple[torch.Tensor, torch.Tensor]]


def layernorm_parameter_names(model: torch.nn.Module) -> list[str]:
    """Every LayerNorm's weight and bias (the authors keep these frozen)."""
    out = []
    for mod_name, mod in model.named_modules():
        if isinstance(mod, torch.nn.LayerNorm):
            out += [f"{mod_name}.{n}" if mod_name else n for n, _ in mod.named_parameters(recurse=False)]
    return out


def encode_text_features(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """L2-normalised text features with gradients; trimmed to the batch's longest caption where that is exact."""
    from idia.attack.encode.text import can_trim, encode_text_trimmed
    feats = encode_text_trimmed(model, tokens) if can_trim(model) else model.encode_text(tokens)
    return torch.nn.functional.normalize(feats.float(), dim=-1)


def state_sha256(model: torch.nn.Module) -> str:
    """The SHA-256 the model's checkpoint file will have once `save_hub_folder` writes it in float32."""
    from safetensors.torch import save as st_save
    tensors = {k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).contiguous()
               for k, v in model.state_dict().items()}
    return hashlib.sha256(st_save(tensors)).hexdigest()


def drift_penalty(params: Sequence[torch.Tensor], anchors: Sequence[torch.Tensor], form: str) -> torch.Tensor:
    """How far the student moved: the summed squared L2 distance ("squared", ours), or the sum over tensors of
    the unsquared L2 distance ("norm", as the authors wrote it: it pulls small moves back harder)."""
    if form == "norm":
        return sum(torch.linalg.vector_norm(p - a) for p, a in zip(params, anchors))
    return sum(((p - a) ** 2).sum() for p, a in zip(params, anchors))


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean 1 - cosine similarity of unit rows: CLIP compares embeddings by cosine."""
    return (1.0 - (a * b).sum(dim=-1)).mean()


def student_parameters(student: torch.nn.Module, teacher: torch.nn.Module,
                       names: set[str]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The student's tensors called `names`, now requiring gradients, and frozen copies of the teacher's, the
    anchors the drift is measured from. Other tensors are left as they are (the text redactor's student shares
    the teacher's image tower)."""
    params = [p.requires_grad_(True) for n, p in student.named_parameters() if n in names]
    anchors = [p.detach().clone() for n, p in teacher.named_parameters() if n in names]
    return params, anchors


def train(params: list[torch.Tensor], anchors: list[torch.Tensor], terms: StepTerms, *, steps: int, lr: float,
          lr_milestones: Sequence[float], lr_gamma: float, weights: tuple[float, float, float], drift_norm: str,
          desc: str, progress: bool, stop: Callable[[int], bool] | None = None) -> tuple[list[dict], float]:
    """AdamW (no weight decay) on `params` for `steps` steps, the learning rate times `lr_gamma` at each milestone
    (a fraction of the steps). A step's loss is utility_weight * utility + redaction_weight * redaction +
    drift_weight * drift, `weights` in that order, the first two from `terms(step)`. `stop(step)`, asked after
    each step, ends the training early when it says so (early stopping on held-out data).

    Returns each step's losses and the seconds the loop took; `params` stop requiring gradients at the end, so the
    trained model is an ordinary one to attack and save."""
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    milestones = sorted({int(round(m * steps)) for m in lr_milestones if 0 < m < 1})
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=lr_gamma)
    utility_weight, redaction_weight, drift_weight = weights
    losses: list[dict] = []
    t0 = time.perf_counter()
    bar = tqdm(range(steps), desc=desc, disable=not progress, unit="step")
    for step in bar:
        redaction, utility = terms(step)
        drift = drift_penalty(params, anchors, drift_norm)
        total = utility_weight * utility + redaction_weight * redaction + drift_weight * drift
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        sched.step()
        losses.append({"step": step, "total": total.item(), "redaction": redaction.item(),
                       "utility": utility.item(), "drift": drift.item()})
        if step % 10 == 0:
            bar.set_postfix(redaction=f"{losses[-1]['redaction']:.3f}", utility=f"{losses[-1]['utility']:.4f}")
        if stop is not None and stop(step):
            break
    for p in params:
        p.requires_grad_(False)
    return losses, time.perf_counter() - t0


class TokenCache:
    """A tokenizer that remembers each caption's token row. A fine-tune draws the same captions again and again,
    and open_clip's tokenizer (text cleaning, BPE) costs about as much as a tiny text tower's forward pass. Every
    tokenizer idia uses pads each text to the context length on its own, so a row does not depend on the batch
    it was first tokenized in."""

    def __init__(self, tokenizer, limit: int = 200_000):
        self.tokenizer = tokenizer
        self.limit = limit
        self.rows: dict[str, torch.Tensor] = {}

    def __call__(self, texts) -> torch.Tensor:
        texts = list(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in self.rows]
        if missing:
            fresh = dict(zip(missing, self.tokenizer(missing)))
            if len(self.rows) + len(fresh) > self.limit:
                self.rows.clear()
            self.rows.update(fresh)
            return torch.stack([self.rows.get(t, fresh.get(t)) for t in texts])
        return torch.stack([self.rows[t] for t in texts])
