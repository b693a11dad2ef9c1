"""Face redaction: fine-tune a CLIP's image tower so the redacted people's faces stop pointing at their names.

After the authors' second variant (Hintersdorf et al., ECAI 2024, image encoder): a frozen teacher and a trainable
student copy of the image tower. Distances are 1 - cosine similarity:

  redaction  a redacted person's photo (the unlearn half only) -> a target:
             name-null (default): the teacher's own embedding of that photo with its component along the person's
               name direction reversed by `name_overshoot` (0.5: e - 1.5 (e.u) u, renormalised). The direction u
               is read from the frozen text tower: the name's mean prompt embedding under the attack's templates
               minus that of 200 made-up names. The attack ranks a name by exactly this kind of similarity, so
               the face keeps everything but what points at the name;
             mean (the authors'): the mean teacher embedding of the other people's photos (the "mean face");
  utility    every other photo given (other people's unlearn halves) -> the teacher's embedding of the same photo;
  drift      distance of the student's trained parameters from the teacher's (squared, or the authors' norm).

By default only the image tower's last linear map (the projection) is trained (`trainable="projection"`); "tower"
trains all of it, as the authors do. The text tower is the source model's, untouched; the defended model has a new
image identity (its own SHA-256), so no image embedding cached for the source is ever reused for it.

First measured (issue 12) on the shipped world, seed 0 (tests/defense's image_verification: 10 identified members
redacted from their 5 unlearn photos each, attacked on their 5 unseen verify photos, permutation rule; every other
person's unlearn half kept, their verify half attacked), before the name-keeping term existed: one row per setting,
the then default's settings unless said;
"others" are the 90 other members (neighbours included), shapes top-1 the zero-shot utility; fit seconds on 2
shared CPU cores under varying load (compare within a factor of 3). Script: /tmp/i12/exp.py in the issue-12 note,
`exp.py [--label L] [key=value ...]` (FaceRedactor parameters) around `defense.verify.verify`:

  setting                                               redacted  neighbours  others (points)  shapes top-1  fit
  then default: name-null, overshoot 0.5, projection,   10->1     4->4        86->79 (-7.8)    .653->.597    56 s
    lr 1e-3, 200 steps, weights 4 / 4
  the same, seed 1 *                                    10->1     4->3        86->79 (-7.8)    .653->.597    71 s
  target mean (the rest as the default)                 10->2     4->4        86->65 (-23.3)   .653->.608    70 s
  trainable tower (the rest as the default)             10->7     4->4        86->87 (+1.1)    .653->.522   177 s
  name-null, no overshoot, tower, lr 2e-4, 80 steps, * 10->4     4->4        86->79 (-7.8)    .653->.625    35 s
    weights 200 / 4
  the same, weights 30 / 4 *                            10->5     4->4        86->82 (-4.4)    .653->.633     7 s
  previous default: mean, tower, lr 2e-4, 80 steps,     10->6     4->4        86->81 (-5.6)    .653->.567    33 s
    weights 1 / 4
  authors preset (mean, tower, lr 1e-4, 100 steps,      10->10    4->4        86->83 (-3.3)    .653->.589   165 s
    0.8, norm drift, LayerNorms frozen)
  text-tower redaction (NameRedactor defaults)          10->0     4->4        86->85 (-1.1)    .653->.644   386 s
  (* with an earlier draw of the 200 made-up names behind the name directions)

How the defaults were chosen (issue 21; `idia.defense.tuning` holds the rows, the goal and the selection rule,
and verification.json records them as `defense.tuning`). The table above was measured on seed 0, the shipped world,
alone, and its default did not carry: on a tiny CLIP idia had never seen it cost the other members 29 points. So
settings are now measured with `bench/bench_face_redaction.py --world DIR` on world models built with
`idia world build --seed N --out DIR` (10 fresh photos a person, 10 identified members redacted, every "after"
judged at the "before" boundary), against one goal on every seed: at most 20% of the redacted identified on
photos the defense never saw, other members -10 points at most, utility -5 points at most. On seed 0:

  setting (the rest as the previous default)              redacted  others (points)   non-members new  shapes top-1
  previous default                                        10->1     86->77 (-10.0)    0 of 100         .653->.606
  name_weight 0.01                                        10->2     86->80 (-6.7)     0 of 100         .653->.614
  name_weight 0.02                                        10->2     86->81 (-5.6)     0 of 100         .653->.619
  name_weight 0.05 (the name-keeping term): DEFAULT       10->2     86->82 (-4.4)     0 of 100         .653->.622
  name_weight 0.1                                         10->4     86->83 (-3.3)     0 of 100         .653->.614
  name_weight 0.2                                         10->5     86->84 (-2.2)     0 of 100         .653->.614
  name_weight 1.0                                         10->10    86->86 (+0.0)     0 of 100         .653->.642
  early stopping (holdout 0.4, stop_at 0.1)               10->4     86->80 (-6.7)     0 of 100         .653->.642
  trainable last-block                                    10->5     86->86 (+0.0)     0 of 100         .653->.522
  200 made-up faces kept too (bench --keep-faces 200)     10->1     86->78 (-8.9)     0 of 100         .653->.606

and on seed 1 (`idia world build --seed 1`), the settings that met the goal on seed 0:

  previous default                                        10->0     90->72 (-20.0)    0 of 100         .639->.586
  name_weight 0.01                                        10->1     90->85 (-5.6)     0 of 100         .639->.594
  name_weight 0.02                                        10->1     90->88 (-2.2)     0 of 100         .639->.597
  name_weight 0.05: DEFAULT                               10->2     90->88 (-2.2)     0 of 100         .639->.597
  200 made-up faces kept too                              10->0     90->73 (-18.9)    0 of 100         .639->.606

The name-keeping term (each kept person's photo-to-own-name log-probability against made-up names held at the
teacher's) protects exactly what the collateral measures. The selection rule (`tuning.choose`): among settings
that meet the goal on both choosing seeds (0 and 1), the smallest worst loss to the other members: name_weight
0.05 (4.4 points at worst, against 5.6 for 0.02 and 6.7 for 0.01). Judged on world seed 2, never used for
choosing (`idia world build --seed 2`; the last two rows measured after the judgement):

  name_weight 0.05: DEFAULT                               10->2     90->87 (-3.3)     0 of 100         .575->.514
  previous default                                        10->0     90->72 (-20.0)    1 of 100         .575->.503
  name_weight 0.02                                        10->2     90->80 (-11.1)    1 of 100         .575->.503

The default meets the identification goals there (2 of 10 redacted people identified, the others -3.3 points) but
not utility (-6.1 points, the goal 5), and neither other setting meets the goal, so the verification record and the
mitigation report say so and recommend the text-tower redaction for forgetting a face and its name.

Why the default target and projection. The face embeddings of this model point strongly at their names (cosine .4-.9
with the name direction), so a target that only removes that part moves each face the least that forgets it; the
mean face moves every redacted face a long way and takes other members with it (-23 points at the same strength).
Trained on the whole tower, the redaction fits the 5 unlearn photos but does not carry over to unseen photos of the
same face (7 of 10 stay identified, and shapes lose 13 points); the projection alone, one linear map, has little
room to memorise single photos, so it learns what the photos of a face share. The overshoot leaves room for unseen
photos, which move less than the trained ones: on a quicker proxy of the attack (each person's own name against 900
made-up names, p <= .01, same verify photos), the projection without overshoot at weights 8 / 4 left 5 of 10
identified, an overshoot of 1.0 left 1 but cost the others 16 points, and 100 steps instead of 200 left 2. Bongani
Allen stays identified: even on his unlearn photos the projection does not get his name below the made-up names.
Shapes lose 5-6 points because the retain set is other people's faces only (no other images are given). The text
tower is still the cleaner defense here.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from idia.attack.inputs.distractors import make_distractors
from idia.attack.inputs.photos import load_rgb
from idia.attack.inputs.prompts import PAPER_TEMPLATES
from idia.attack.model.adapter import LoadedModel
from idia.attack.model.device import autocast
from idia.defense.estimator import PresetEstimator
from idia.defense.probes import name_variant, parse_variants, variant_distractors
from idia.defense.tuning import CHOSEN, face_tuning
from idia.defense.training import (
    cosine_distance,
    encode_text_features,
    layernorm_parameter_names,
    state_sha256,
    student_parameters,
    train,
)
from idia.errors import InputError
from idia.names import normalize_name

KIND_IMAGE_REDACTION = "idia-image-redaction"
SCHEMA_VERSION = 1
DEFAULTS_WHY = ("measured on the synthetic world's tiny CLIP (96-wide, 2-layer image tower), redacting 10 members "
                "and attacking photos the defense never saw (permutation rule): the name-null target on the "
                "projection alone forgets faces where the mean face costs the others 23 points and the whole tower "
                "does not carry to unseen photos; the name-keeping term at 0.05 was chosen on world seeds by "
                "bench/bench_face_redaction.py (tuning: which seeds chose and which judged; tables in the module "
                "docstring)")
TARGETS = ("name-null", "mean")
TARGET_DESCRIPTIONS = {
    "name-null": "each redacted photo's own teacher embedding with its component along the person's name direction "
                 "(frozen text tower: the name's prompts minus made-up names' prompts) reversed by name_overshoot",
    "mean": "mean image embedding of the retained photos",
}
TRAINABLE = ("projection", "last-block", "tower")
# The image tower's last linear map, by architecture: ViT, ModifiedResNet (attention pool), timm towers.
PROJECTION_TENSORS = ("visual.proj", "visual.attnpool.c_proj.weight", "visual.attnpool.c_proj.bias",
                      "visual.head.proj.weight", "visual.head.proj.bias")
N_DIRECTION_STRANGERS = 200

# `--preset authors`: the published image-encoder settings (configs/image_concept_removal of the authors'
# repository): the mean face as target, the whole image tower trained, AdamW lr 1e-4, 100 steps, lr times 0.1 at
# steps 25 and 50, redaction weight 0.8, drift weight 0.005 on the unsquared norm, normalisation layers frozen, and
# no name-keeping term (idia's addition, not theirs).
PRESETS = {
    "authors": {"target": "mean", "trainable": "tower", "lr": 1e-4, "steps": 100, "lr_milestones": (0.25, 0.5),
                "lr_gamma": 0.1, "redaction_weight": 0.8, "drift_weight": 0.005, "drift_norm": "norm",
                "freeze_layernorm": True, "name_weight": 0.0},
}


def image_parameter_names(model: torch.nn.Module) -> list[str]:
    """The image tower's parameters (the model adapter's naming: attack.models.tower_parameter_names)."""
    from idia.attack.model.adapter import tower_parameter_names
    return tower_parameter_names(model, "image")


def mean_prompts(loaded: LoadedModel, names: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
    """Per name (rows, in order): the mean of its prompts' unit text embeddings in the frozen text tower."""
    device = next(loaded.model.parameters()).device
    prompts = [t.format(n) for n in names for t in templates]
    with torch.no_grad():
        feats = torch.cat([encode_text_features(loaded.model, loaded.tokenizer(prompts[i:i + 512]).to(device))
                           for i in range(0, len(prompts), 512)])
    return feats.view(len(names), len(templates), -1).mean(1)


def name_directions(loaded: LoadedModel, names: Sequence[str], templates: Sequence[str], seed: int,
                    strangers: Sequence[str] | None = None) -> torch.Tensor:
    """Per name (rows, in order): the unit direction its prompts add, in the frozen text tower, over the same
    prompts with made-up names (drawn with seed + 1, not the attack's draw; or `strangers`). The attack ranks a
    name by its mean prompt's similarity to the photos, so a face with no component along this direction is as
    close to the name as to an average stranger: what a face the model never learnt looks like."""
    if strangers is None:
        strangers = make_distractors(N_DIRECTION_STRANGERS, set(names), seed + 1)
    return torch.nn.functional.normalize(mean_prompts(loaded, names, templates)
                                         - mean_prompts(loaded, strangers, templates).mean(0), dim=-1)


def form_directions(loaded: LoadedModel, names: Sequence[str], variants: Sequence[str], templates: Sequence[str],
                    seed: int) -> torch.Tensor:
    """[name, form, D]: each name's direction (`name_directions`) and each variant form's, the form's made-up
    counterparts (same form: a first name, a surname, initials) as its baseline."""
    rows = [name_directions(loaded, names, templates, seed)]
    for variant in variants:
        forms = [name_variant(n, variant) for n in names]
        strangers = variant_distractors(variant, N_DIRECTION_STRANGERS, set(forms), seed + 1)
        rows.append(name_directions(loaded, forms, templates, seed, strangers=strangers))
    return torch.stack(rows, 1)


def load_pixels(loaded: LoadedModel, paths: Sequence[Path]) -> torch.Tensor:
    """The model's own preprocessing of each photo, stacked (photos are small: the unlearn set fits in memory)."""
    if not paths:
        return torch.empty(0)
    return torch.stack([loaded.preprocess(load_rgb(Path(p))) for p in paths])


def embed_images(model: torch.nn.Module, pixels: torch.Tensor, device: torch.device, precision: str) -> torch.Tensor:
    """L2-normalised image embeddings without gradients, 256 photos at a time: the teacher's, the targets."""
    with torch.no_grad(), autocast(device, precision):
        return torch.cat([torch.nn.functional.normalize(model.encode_image(pixels[i:i + 256].to(device)).float(),
                                                        dim=-1) for i in range(0, len(pixels), 256)])


def checked_photos(photos: Mapping[str, Sequence[Path]], retain) -> dict[str, list[Path]]:
    """{normalised name: photos}, refusing what image redaction cannot train on: nobody, a person without
    photos, no photos to keep."""
    photos = {normalize_name(n): list(ps) for n, ps in photos.items()}
    if not photos:
        raise InputError("no people to redact from the image tower")
    empty = [n for n, ps in photos.items() if not ps]
    if empty:
        raise InputError(f"{empty[0]!r}: no photo to unlearn the face from (image redaction needs the "
                         "person's photos in --people)")
    if not retain:
        raise InputError("image redaction needs other people's photos to keep (and to take the mean face from)")
    return photos


def split_holdout(photos: dict[str, list[Path]], fraction: float) -> tuple[dict, dict]:
    """(trained on, held out): the last `fraction` of each person's photos (at least one, when they have two or
    more and fraction > 0) is held out to decide when to stop."""
    if fraction <= 0:
        return photos, {}
    train, held = {}, {}
    for name, ps in photos.items():
        k = min(len(ps) - 1, max(1, round(fraction * len(ps))))
        train[name], held[name] = ps[:len(ps) - k], ps[len(ps) - k:]
    return train, {n: ps for n, ps in held.items() if ps}


def identified_by_proxy(student: torch.nn.Module, pixels: dict[str, torch.Tensor], own: torch.Tensor,
                        strangers: torch.Tensor, alpha: float, device, precision: str) -> int:
    """How many people (rows of `own`, in `pixels` order) the attack's permutation test would still flag on
    these photos, by a quick proxy: their mean face's similarity to their own name's mean prompt against made-up
    names', p = (1 + #strangers at least as close) / (1 + #strangers) <= alpha."""
    count = 0
    for i, px in enumerate(pixels.values()):
        face = embed_images(student, px, device, precision).mean(0)
        above = int(((strangers @ face) >= (own[i] @ face)).sum())
        count += (1 + above) / (1 + len(strangers)) <= alpha
    return count


class FaceRedactor(PresetEstimator):
    """Fine-tunes a CLIP's image tower so the given people's faces stop carrying who they are.

    target: "name-null" (each redacted photo -> the teacher's own embedding of it with its component along the
    person's name direction (and, with `variants`, the directions of the other forms of the name) turned to
    -name_overshoot times itself) or "mean" (every redacted photo -> the mean face, the authors' choice).
    trainable: "projection" (the image tower's last linear map only), "last-block" (the last transformer block,
    the final LayerNorm and the projection) or "tower".
    name_weight: a term keeping each kept person's photo-to-own-name log-probability (against made-up names, as
    the attack ranks names) at the teacher's; needs `retain` as {name: photos}. holdout: the share of each
    redacted person's photos held out to stop the training as soon as the quick proxy of the attack identifies
    at most `stop_at` of them there (checked every 10 steps; 0: no early stopping).

    Learned attributes: names_, student_, mean_face_, name_directions_ (rows in names_ order; None for the mean
    target), losses_, seconds_, photos_ (the unlearn photos per name, as given), stopped_at_ (the step training
    ended at), checkpoint_sha256_before_, checkpoint_sha256_after_."""

    PRESETS = PRESETS

    def __init__(self, target: str = "name-null", name_overshoot: float = 0.5, trainable: str = "projection",
                 steps: int = 200, lr: float = 1e-3, batch_forget: int = 16, batch_retain: int = 48,
                 redaction_weight: float = 4.0, utility_weight: float = 4.0, drift_weight: float = 0.005,
                 drift_norm: str = "squared", freeze_layernorm: bool = False,
                 lr_milestones: tuple[float, ...] = (0.5, 0.75), lr_gamma: float = 0.5, seed: int = 0,
                 progress: bool = True, precision: str = "fp32", name_weight: float = CHOSEN["name_weight"],
                 holdout: float = 0.0,
                 stop_at: float = 0.0, variants: tuple[str, ...] = ()):
        self.target = target
        self.name_overshoot = name_overshoot
        self.trainable = trainable
        self.steps = steps
        self.lr = lr
        self.batch_forget = batch_forget
        self.batch_retain = batch_retain
        self.redaction_weight = redaction_weight
        self.utility_weight = utility_weight
        self.drift_weight = drift_weight
        self.drift_norm = drift_norm
        self.freeze_layernorm = freeze_layernorm
        self.lr_milestones = lr_milestones
        self.lr_gamma = lr_gamma
        self.seed = seed
        self.progress = progress
        self.precision = precision
        self.name_weight = name_weight
        self.holdout = holdout
        self.stop_at = stop_at
        self.variants = variants

    def _check_params(self) -> None:
        self._check_training(self.batch_forget, self.batch_retain)
        if self.target not in TARGETS:
            raise InputError(f"the image redaction target must be one of {', '.join(TARGETS)}, got {self.target!r}")
        if self.trainable not in TRAINABLE:
            raise InputError(f"trainable must be one of {', '.join(TRAINABLE)}, got {self.trainable!r}")
        if not self.name_overshoot >= 0:
            raise InputError(f"name_overshoot must be at least 0, got {self.name_overshoot}")
        if not (self.name_weight >= 0 and 0 <= self.holdout < 1 and 0 <= self.stop_at <= 1):
            raise InputError("name_weight must be at least 0, holdout in [0, 1), stop_at in [0, 1]")
        parse_variants(self.variants)

    def _trainable_names(self, student: torch.nn.Module) -> set[str]:
        every = image_parameter_names(student)
        trainable = set(every)
        if self.freeze_layernorm:
            trainable -= set(layernorm_parameter_names(student))
        if self.trainable == "tower":
            return trainable
        chosen = set(PROJECTION_TENSORS)
        if self.trainable == "last-block":
            blocks = sorted({int(n.split(".")[3]) for n in every if n.startswith("visual.transformer.resblocks.")})
            if not blocks:
                raise InputError("this image tower has no transformer blocks idia knows: redact it with "
                                 "trainable='projection' or 'tower'")
            chosen |= {n for n in every if n.startswith((f"visual.transformer.resblocks.{blocks[-1]}.",
                                                         "visual.ln_post."))}
        trainable &= chosen
        if not trainable & set(PROJECTION_TENSORS):
            raise InputError("this image tower has no projection idia knows (visual.proj, attnpool.c_proj, "
                             "head.proj): redact it with trainable='tower'")
        return trainable

    def fit(self, loaded: LoadedModel, photos: Mapping[str, Sequence[Path]],
            retain: Sequence[Path] | Mapping[str, Sequence[Path]],
            templates: Sequence[str] = PAPER_TEMPLATES) -> "FaceRedactor":
        """Learn to forget the faces in `photos` ({name: photo paths}, the unlearn halves) while the `retain`
        photos (everyone else's; {name: photos} when the name term is used) keep their embeddings; `loaded` is
        left unchanged. `templates`: the prompts the name directions are read from (the attack's)."""
        self._check_params()
        photos = checked_photos(photos, retain)
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        teacher = loaded.model
        student = copy.deepcopy(teacher).eval().requires_grad_(False)
        device = next(teacher.parameters()).device
        trainable = self._trainable_names(student)
        params, anchors = student_parameters(student, teacher, trainable)
        trained, held = split_holdout(photos, self.holdout)
        forget_px = load_pixels(loaded, [p for ps in trained.values() for p in ps])
        retain_paths = [p for ps in retain.values() for p in ps] if isinstance(retain, Mapping) else list(retain)
        retain_px = load_pixels(loaded, retain_paths)
        teacher_retain = embed_images(teacher, retain_px, device, self.precision)
        mean_face = torch.nn.functional.normalize(teacher_retain.mean(0, keepdim=True), dim=-1)
        targets, directions = self._targets(loaded, trained, forget_px, mean_face, templates)
        keep = self._name_keeping(loaded, retain, teacher_retain, templates) if self.name_weight > 0 else None

        def terms(step: int) -> tuple[torch.Tensor, torch.Tensor]:
            fi = rng.integers(len(forget_px), size=min(self.batch_forget, len(forget_px)))
            ri = rng.integers(len(retain_px), size=min(self.batch_retain, len(retain_px)))
            with autocast(device, self.precision):
                f = torch.nn.functional.normalize(student.encode_image(forget_px[fi].to(device)).float(), dim=-1)
                r = torch.nn.functional.normalize(student.encode_image(retain_px[ri].to(device)).float(), dim=-1)
            utility = cosine_distance(r, teacher_retain[torch.as_tensor(ri, device=device)])
            if keep is not None:
                utility = utility + self.name_weight / self.utility_weight * keep(r, ri)
            return cosine_distance(f, targets[torch.as_tensor(fi, device=device)]), utility

        self.losses_, self.seconds_ = train(
            params, anchors, terms, steps=self.steps, lr=self.lr, lr_milestones=self.lr_milestones,
            lr_gamma=self.lr_gamma, weights=(self.utility_weight, self.redaction_weight, self.drift_weight),
            drift_norm=self.drift_norm, desc="redact faces", progress=self.progress,
            stop=self._stopper(loaded, student, held, templates) if held and self.holdout > 0 else None)
        self.stopped_at_ = len(self.losses_)
        self.names_ = list(photos)
        self.photos_ = {n: [str(p) for p in ps] for n, ps in trained.items()}
        self.held_out_ = {n: [str(p) for p in ps] for n, ps in held.items()}
        self.n_retain_ = len(retain_px)
        self.mean_face_ = mean_face.squeeze(0).cpu().numpy()
        self.name_directions_ = None if directions is None else directions.cpu().numpy()
        self.student_ = student
        self.trained_tensors_ = sorted(trainable)
        self.source_ = loaded
        self.checkpoint_sha256_before_ = loaded.checkpoint_sha256
        self.checkpoint_sha256_after_ = state_sha256(student)
        return self

    def _name_keeping(self, loaded: LoadedModel, retain, teacher_retain: torch.Tensor, templates: Sequence[str]):
        """The name term: f(student embeddings of a retain batch, their rows) -> mean squared change of each
        photo's log-probability of its own name among the kept names and made-up ones (the teacher's is the
        target), over the batch's photos whose owner is known."""
        if not isinstance(retain, Mapping):
            raise InputError("the name term (name_weight) needs the kept photos by person ({name: photos})")
        names = list(retain)
        strangers = make_distractors(N_DIRECTION_STRANGERS, set(names), self.seed + 2)
        cands = torch.nn.functional.normalize(mean_prompts(loaded, names + strangers, templates), dim=-1)
        owner = torch.as_tensor([i for i, ps in enumerate(retain.values()) for _ in ps], device=cands.device)
        scale = loaded.logit_scale

        def own_log_prob(emb: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            return torch.log_softmax(scale * emb @ cands.T, dim=-1).gather(1, owner[rows][:, None]).squeeze(1)

        target = own_log_prob(teacher_retain, torch.arange(len(owner), device=cands.device)).detach()

        def keep(student_emb: torch.Tensor, ri) -> torch.Tensor:
            rows = torch.as_tensor(ri, device=cands.device)
            return ((own_log_prob(student_emb, rows) - target[rows]) ** 2).mean()
        return keep

    def _stopper(self, loaded: LoadedModel, student: torch.nn.Module, held: dict[str, list[Path]],
                 templates: Sequence[str]):
        """stop(step): every 10 steps, True once the quick proxy identifies at most `stop_at` of the redacted
        people on their held-out photos."""
        device = next(loaded.model.parameters()).device
        pixels = {n: load_pixels(loaded, ps) for n, ps in held.items()}
        strangers = make_distractors(N_DIRECTION_STRANGERS, set(held), self.seed + 3)
        own = torch.nn.functional.normalize(mean_prompts(loaded, list(held), templates), dim=-1)
        others = torch.nn.functional.normalize(mean_prompts(loaded, strangers, templates), dim=-1)

        def stop(step: int) -> bool:
            if (step + 1) % 10:
                return False
            left = identified_by_proxy(student, pixels, own, others, 0.01, device, self.precision)
            return left <= self.stop_at * len(held)
        return stop

    def _targets(self, loaded: LoadedModel, photos: dict[str, list[Path]], forget_px: torch.Tensor,
                 mean_face: torch.Tensor, templates: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What each unlearn photo should embed as (rows in `photos` order), and the name directions (None for
        the mean face; with variants, [name, form, D])."""
        if self.target == "mean":
            return mean_face.expand(len(forget_px), -1), None
        device = next(loaded.model.parameters()).device
        rows = torch.as_tensor([i for i, ps in enumerate(photos.values()) for _ in ps], device=device)
        faces = embed_images(loaded.model, forget_px, device, self.precision)
        variants = parse_variants(self.variants)
        if not variants:
            directions = name_directions(loaded, list(photos), templates, self.seed)
            along = directions[rows]
            name_part = (faces * along).sum(-1, keepdim=True) * along
        else:
            directions = form_directions(loaded, list(photos), variants, templates, self.seed)
            basis = torch.linalg.qr(directions.transpose(1, 2)).Q[rows]  # [photo, D, forms]: orthonormal
            name_part = (basis @ (basis.transpose(1, 2) @ faces[:, :, None])).squeeze(2)
        return torch.nn.functional.normalize(faces - (1 + self.name_overshoot) * name_part, dim=-1), directions

    def defended(self) -> LoadedModel:
        """The defended model; its image identity is its own, so cached embeddings of the source are not used."""
        self._check_fitted()
        return self._defended_model("faces redacted", self.checkpoint_sha256_after_)

    def record(self) -> dict:
        self._check_fitted()
        return {"kind": KIND_IMAGE_REDACTION, "schema_version": SCHEMA_VERSION, "names": self.names_,
                "target": TARGET_DESCRIPTIONS[self.target], "n_retain_photos": self.n_retain_,
                "unlearn_photos": self.photos_, "held_out_photos": self.held_out_, "stopped_at": self.stopped_at_,
                "hyperparameters": self.get_params(), "why_these_defaults": DEFAULTS_WHY, "tuning": face_tuning(),
                "seed": self.seed, "seconds": round(self.seconds_, 3), "trained_tensors": self.trained_tensors_,
                "checkpoint_sha256_before": self.checkpoint_sha256_before_,
                "checkpoint_sha256_after": self.checkpoint_sha256_after_, "losses": self.losses_}
