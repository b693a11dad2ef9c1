"""Name redaction: fine-tune a CLIP's text encoder so that a redacted name reads like a neutral phrase.

After Hintersdorf et al., "Defending Our Privacy With Backdoors" (ECAI 2024). A frozen teacher and a trainable
student copy of the text tower (token embedding, positional embedding, transformer, final LayerNorm, text
projection: every parameter outside the image tower and the logit scale). Three terms, distances are
1 - cosine similarity of the embeddings (CLIP compares embeddings by cosine):

  redaction  a caption with a redacted name (the paper's 21 prompt templates, or a clean caption with one word
             replaced by the name) -> the teacher's embedding of the same caption with the name replaced by a
             neutral phrase ("a person");
  utility    a clean caption without any redacted name -> the teacher's embedding of the same caption. Half of
             these captions carry names that must keep their meaning: 30% of those are the redacted people's
             name neighbours (same first or last name; real known neighbours get half of these), the rest other
             known or made-up names;
  drift      the squared L2 distance of the student's parameters from the teacher's.

total = utility + redaction_weight * redaction + drift_weight * drift. The image tower is shared with the
teacher, untouched; every fine-tuned tensor (the positional embedding too) is written back into the saved model.

Name neighbours: on a tiny CLIP, redaction without them also erased members who share a first or last name with a
redacted person (4 of 9 stayed identified); with them in the utility captions 6-8 of 9 stayed. So neighbours are
built in: known names (the user's keep-names, the world's people) that share a name part with a redacted name,
plus made-up combinations of each redacted first name with other surnames and vice versa. What we saw on the
world: the redacted person's shared first name is what weakens ("Kojo Lau" drifts to made-up "... Lau"
candidates when "Kojo Huang" is redacted), so real neighbours are sampled as often as all made-up ones together.

Hyperparameters. The paper's reference (`REFERENCE`): AdamW, lr 1e-4, no weight decay, 400 steps, 128 clean + 128
name captions a batch, lr halved at 50% and 75% of the steps, redaction weight 0.6, drift weight 0.01. Measured
on the synthetic world's tiny CLIP (64-wide, 2-layer text tower), redacting 10 identified members, 3 of them with
an identified member neighbour (tests/test_defense.py's choice); identified by the paper rule (tau = 1) / by the
calibrated rule (5% FPR on the reference people); neighbours by the paper rule, with their paper scores
(before: Kojo Lau 14, Vladimir Nilsson 15, Oleg Allen 21); 2 CPU threads:

  lr, steps, redaction weight     redacted      neighbours (scores)   other members  shapes top-1   time
  1e-4, 400, 0.6 (reference)      10->0 / 0     3->2 (6, 0, 20)       72->73         .650->.650     29 s
  1e-4, 200, 0.6                  10->3 / 7     3->3 (8, 2, 19)       72->74         .650->.644     16 s
  5e-4, 200, 0.6                  10->0 / 0     3->3 (5, 1, 21)       72->75         .650->.633     15 s
  5e-4, 200, 1.0 (default)        10->0 / 0     3->3 (5, 2, 21)       72->74         .650->.644     15 s
  5e-4, 300, 1.0                  10->0 / 0     3->3 (2, 3, 21)       72->75         .650->.656     23 s
  5e-4, 400, 1.0                  10->0 / 0     3->3 (2, 1, 21)       72->74         .650->.644     31 s
  1e-3, 200, 1.0                  10->0 / 0     3->3 (2, 4, 21)       72->75         .650->.628     15 s
  default, made-up neighbours     10->0 / 0     3->1                  72->73         .650->.644     15 s
    only (before real ones got half of the neighbour captions)

So the default raises lr to 5e-4 and the redaction weight to 1.0 and halves the steps to 200: it redacts as
completely as the reference, keeps every identified neighbour (the reference lost one), costs under a point of
shape accuracy, and takes half the time. Longer or faster training wears the neighbours down (400 steps) or
costs utility (1e-3; 300 steps with seed 1: .628). Seeds 1 and 2 of the default: the same identification
outcome, shapes .656 and .633. Fewer, more memorised names can need more steps: the demo's five members seen most
in training go 5->1 under the calibrated rule at 200 steps (the one left at p = 0.04 against a 5% threshold) and
5->0 at 300 steps (shapes .650->.639).
The name neighbours stay identified but weaker (a shared first name loses most of its prompts): the
verification reports them separately for that reason. A larger model may want the reference lr back.
"""

from __future__ import annotations

import copy
import re
import warnings as pywarnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from idia.attack.inputs import names as name_lists
from idia.attack.inputs.distractors import make_distractors
from idia.attack.inputs.prompts import PAPER_TEMPLATES
from idia.attack.model.adapter import LoadedModel, tower_parameter_names
from idia.attack.model.device import autocast
from idia.defense.estimator import PresetEstimator
from idia.defense.probes import name_forms, parse_variants
from idia.defense.training import (
    TokenCache,
    cosine_distance,
    encode_text_features,
    layernorm_parameter_names,
    state_sha256,
    student_parameters,
    train,
)
from idia.errors import InputError
from idia.io import read_text_file
from idia.names import normalize_name

KIND_REDACTION = "idia-redaction"
SCHEMA_VERSION = 1
DEFAULT_NEUTRAL = "a person"

# The paper's reference settings, for the record and for comparison runs.
REFERENCE = {"lr": 1e-4, "steps": 400, "batch_clean": 128, "batch_names": 128, "redaction_weight": 0.6,
             "drift_weight": 0.01}
# `--preset authors`: the published text-encoder settings (D0miH/Defending-Our-Privacy-With-Backdoors,
# configs/concept_removal): target word "human", LayerNorms frozen, AdamW lr 1e-4 for 400 steps halved at 200 and
# 300, redaction weight 0.6, drift weight 0.01 on the sum of the tensors' unsquared L2 distances.
PRESETS = {
    "authors": {"neutral": "human", "lr": 1e-4, "steps": 400, "lr_milestones": (0.5, 0.75),
                "redaction_weight": 0.6, "drift_weight": 0.01, "drift_norm": "norm", "freeze_layernorm": True},
}

DEFAULTS_WHY = ("measured on the synthetic world's tiny CLIP, redacting 10 members: lr 5e-4, redaction weight 1.0 "
                "and 200 steps redact as completely as the reference (1e-4, 0.6, 400 steps) while keeping every "
                "identified name neighbour (the reference lost one) in half the time; 1e-3 cost 2 points of "
                "zero-shot accuracy, 400 steps wore the neighbours down. Drift weight 0.01, batches 128 + 128 and "
                "lr halved at 50% and 75% of the steps as in the reference")


# --- names ---------------------------------------------------------------------------------------------------

def name_parts(name: str) -> tuple[str, str] | None:
    """(first, last) of a name of at least two words, compared case-insensitively; None for a single word."""
    words = normalize_name(name).split(" ")
    return (words[0].casefold(), words[-1].casefold()) if len(words) >= 2 else None


@dataclass(frozen=True)
class Neighbour:
    """A name that is not redacted but shares its first or last name with one that is."""

    name: str
    shares: str  # "first" or "last"
    with_: str  # the redacted name

    def to_dict(self) -> dict:
        return {"name": self.name, "shares": self.shares, "with": self.with_}


def find_neighbours(redacted: Sequence[str], known: Iterable[str]) -> list[Neighbour]:
    """The known names that share a first or last name with a redacted name but are not redacted themselves."""
    gone = {n.casefold() for n in redacted}
    parts = [(r, name_parts(r)) for r in redacted]
    out: list[Neighbour] = []
    seen: set[str] = set()
    for name in known:
        name = normalize_name(name)
        mine = name_parts(name)
        if mine is None or name.casefold() in gone or name.casefold() in seen:
            continue
        for r, theirs in parts:
            if theirs is None:
                continue
            shares = "first" if mine[0] == theirs[0] else "last" if mine[1] == theirs[1] else None
            if shares:
                out.append(Neighbour(name, shares, r))
                seen.add(name.casefold())
                break
    return out


def pick_to_redact(identified: Sequence[str], members: Iterable[str], n: int) -> list[str]:
    """n of the `identified` members to redact in an experiment: those with an identified member who shares their
    first or last name come first (so the neighbours' cost is measured), then the rest in the given order; never
    two who share a name part. The tests and bench/bench_face_redaction.py choose by this one rule."""
    members = set(members)
    identified = list(identified)
    with_neighbour = [m for m in identified
                      if any(nb.name in identified for nb in find_neighbours([m], sorted(members - {m})))]
    chosen: list[str] = []
    for name in with_neighbour + identified:
        if len(chosen) < n and name not in chosen and not find_neighbours(chosen, [name]):
            chosen.append(name)
    return chosen


def made_up_neighbours(redacted: Sequence[str], per_name: int, seed: int,
                       exclude: Iterable[str] = ()) -> list[Neighbour]:
    """Each redacted first name with `per_name` other surnames, and each surname with `per_name` other first names,
    drawn from the bundled name lists: the names a redaction must learn to leave alone."""
    rng = np.random.default_rng(seed)
    taken = {n.casefold() for n in redacted} | {n.casefold() for n in exclude}
    firsts, lasts = name_lists.first_names(), name_lists.last_names()
    out: list[Neighbour] = []
    for r in redacted:
        words = normalize_name(r).split(" ")
        if len(words) < 2:
            continue
        for shares, pool in (("first", lasts), ("last", firsts)):
            made = 0
            for i in rng.permutation(len(pool)):
                if made >= per_name:
                    break
                name = f"{words[0]} {pool[i]}" if shares == "first" else f"{pool[i]} {words[-1]}"
                if name.casefold() not in taken:
                    taken.add(name.casefold())
                    out.append(Neighbour(name, shares, r))
                    made += 1
    return out


def read_redaction_names(path: str | Path) -> list[str]:
    """The names to redact, one per line; an empty file is an error (a redaction of nobody is a mistake)."""
    names = name_lists.read_name_file(path)
    if not names:
        raise InputError(f"{path}: holds no names to redact")
    return names


# --- captions ------------------------------------------------------------------------------------------------

def bundled_captions() -> list[str]:
    text = resources.files("idia.defense").joinpath("data", "captions.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def read_captions(path: str | Path) -> list[str]:
    """Clean captions from a text file, one per line ('#' comments and blank lines skipped)."""
    path = Path(path)
    text = read_text_file(path, "text file of captions")
    out = [" ".join(line.split()) for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not out:
        raise InputError(f"{path}: holds no captions")
    return out


def _name_pattern(names: Sequence[str]) -> re.Pattern | None:
    if not names:
        return None
    alternatives = sorted((re.escape(n) for n in names), key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)


class CaptionSampler:
    """Draws each step's captions: (student captions with a redacted name, the teacher's neutral versions of them,
    utility captions). A name goes into a paper template or replaces one word of a clean caption."""

    def __init__(self, redacted: Sequence[str], neutral: str, clean: Sequence[str], neighbours: Sequence[str],
                 others: Sequence[str], templates: Sequence[str], template_fraction: float,
                 name_caption_fraction: float, neighbour_fraction: float, known_neighbours: Sequence[str] = (),
                 forms: Sequence[str] = ()):
        self.redacted, self.neutral, self.clean = list(redacted), neutral, list(clean)
        self.forms = list(forms)  # other forms of the redacted names (--variants): half the redaction captions
        self.neighbours, self.others, self.templates = list(neighbours), list(others), list(templates)
        self.known_neighbours = list(known_neighbours)
        self.template_fraction = template_fraction
        self.name_caption_fraction = name_caption_fraction
        self.neighbour_fraction = neighbour_fraction
        self._words = [c.split(" ") for c in self.clean]

    def _frame(self, rng: np.random.Generator) -> str:
        """A caption with one '{0}' where a name goes."""
        if rng.random() < self.template_fraction:
            return self.templates[rng.integers(len(self.templates))]
        words = list(self._words[rng.integers(len(self._words))])
        # The name goes among the first six words, so a short context (the tiny CLIP's 16 tokens) still holds it.
        words[rng.integers(min(len(words), 6))] = "{0}"
        return " ".join(w.replace("{", "(").replace("}", ")") if w != "{0}" else w for w in words)

    def redaction(self, n: int, rng: np.random.Generator) -> tuple[list[str], list[str]]:
        frames = [self._frame(rng) for _ in range(n)]
        who = rng.integers(len(self.redacted), size=n)
        named = [self.redacted[i] for i in who]
        if self.forms:  # half the captions name a person by another form (the draws without forms are unchanged)
            named = [self.forms[rng.integers(len(self.forms))] if rng.random() < 0.5 else name for name in named]
        return ([f.format(name) for f, name in zip(frames, named)], [f.format(self.neutral) for f in frames])

    def utility(self, n: int, rng: np.random.Generator) -> list[str]:
        out = []
        for _ in range(n):
            if rng.random() < self.name_caption_fraction and (self.neighbours or self.others):
                use_neighbour = self.neighbours and (not self.others or rng.random() < self.neighbour_fraction)
                pool = self.neighbours if use_neighbour else self.others
                if use_neighbour and self.known_neighbours and rng.random() < 0.5:
                    pool = self.known_neighbours  # real people first: half the neighbour captions are theirs
                out.append(self._frame(rng).format(pool[rng.integers(len(pool))]))
            else:
                out.append(self.clean[rng.integers(len(self.clean))])
        return out


# --- the text tower ------------------------------------------------------------------------------------------

def text_parameter_names(model: torch.nn.Module) -> list[str]:
    """The text tower's parameters (the model adapter's naming: attack.models.tower_parameter_names)."""
    return tower_parameter_names(model, "text")


# --- the estimator -------------------------------------------------------------------------------------------

class NameRedactor(PresetEstimator):
    """Fine-tunes a CLIP's text tower to forget names. `fit` learns; `defended()` and `save()` give the result.

    Learned attributes: names_, neighbours_ (list of Neighbour), student_ (the defended CLIP, sharing the image
    tower with the original), losses_ (per step: total, redaction, utility, drift), seconds_,
    checkpoint_sha256_before_, checkpoint_sha256_after_, warnings_."""

    PRESETS = PRESETS

    def __init__(self, neutral: str = DEFAULT_NEUTRAL, steps: int = 200, lr: float = 5e-4,
                 batch_clean: int = 128, batch_names: int = 128, redaction_weight: float = 1.0,
                 drift_weight: float = 0.01, name_caption_fraction: float = 0.5, neighbour_fraction: float = 0.3,
                 template_fraction: float = 0.5, n_neighbour_names: int = 8, n_other_names: int = 200,
                 lr_milestones: tuple[float, ...] = (0.5, 0.75), seed: int = 0, progress: bool = True,
                 precision: str = "fp32", freeze_layernorm: bool = False, drift_norm: str = "squared",
                 variants: tuple[str, ...] = ()):
        self.neutral = neutral
        self.steps = steps
        self.lr = lr
        self.batch_clean = batch_clean
        self.batch_names = batch_names
        self.redaction_weight = redaction_weight
        self.drift_weight = drift_weight
        self.name_caption_fraction = name_caption_fraction
        self.neighbour_fraction = neighbour_fraction
        self.template_fraction = template_fraction
        self.n_neighbour_names = n_neighbour_names
        self.n_other_names = n_other_names
        self.lr_milestones = lr_milestones
        self.seed = seed
        self.progress = progress
        self.precision = precision
        self.freeze_layernorm = freeze_layernorm
        self.drift_norm = drift_norm
        self.variants = variants

    def _check_params(self) -> None:
        parse_variants(self.variants)
        if not self.neutral.strip():
            raise InputError("the neutral phrase is empty")
        if "{" in self.neutral or "}" in self.neutral:
            raise InputError(f"the neutral phrase may not contain braces: {self.neutral!r}")
        self._check_training(self.batch_clean, self.batch_names)

    def fit(self, loaded: LoadedModel, names: Sequence[str], clean_captions: Sequence[str] | None = None,
            neighbours: Sequence[str | Neighbour] | None = None, keep_names: Sequence[str] | None = None,
            templates: Sequence[str] = PAPER_TEMPLATES, warn: Callable[[str], None] | None = None) -> "NameRedactor":
        """Learn the redaction of `names` on `loaded` (left unchanged).

        clean_captions: the utility corpus (default: the bundled one); captions naming a redacted person are
        dropped. neighbours: names to protect explicitly (default: found among `keep_names`, plus made-up ones).
        keep_names: other people's names the model should keep knowing (e.g. a keep-names file, the world's
        people, the audited people). A redacted name found in none of `keep_names` and no caption gets a warning
        (a likely misspelling), when any `keep_names` are given."""
        self._check_params()
        self.warnings_: list[str] = []

        def note(msg: str) -> None:
            self.warnings_.append(msg)
            if warn is not None:
                warn(msg)
            else:
                pywarnings.warn(msg, UserWarning, stacklevel=3)

        redacted = list(dict.fromkeys(normalize_name(n) for n in names if normalize_name(n)))
        if not redacted:
            raise InputError("no names to redact")
        gone = {n.casefold() for n in redacted}
        forms = name_forms(redacted, parse_variants(self.variants))
        pattern = _name_pattern(redacted + forms)
        given_clean = list(clean_captions) if clean_captions is not None else bundled_captions()
        clean = [c for c in given_clean if not pattern.search(c)]
        if not clean:
            raise InputError("no clean captions left once the captions naming a redacted person are dropped")
        keep = [normalize_name(n) for n in (keep_names or [])]
        known = {n.casefold() for n in keep}
        for name in redacted:
            if name_parts(name) is None:
                note(f"{name!r}: a single word, so it has no first or last name to protect neighbours by")
            mentioned = _name_pattern([name])
            if known and name.casefold() not in known and not any(mentioned.search(c) for c in given_clean):
                note(f"{name!r}: in none of the {len(known)} known names (keep-names, the world's people) nor "
                     f"any caption; redacted anyway: check the spelling")

        known_found: set[str] = set()
        if neighbours is None:
            found = find_neighbours(redacted, keep)
            known_found = {n.name.casefold() for n in found}
            made = made_up_neighbours(redacted, self.n_neighbour_names, self.seed,
                                      exclude=[n.name for n in found] + keep)
            neighbour_list = found + made
        else:  # the caller's; names sharing no part with a redacted one are still kept, as other names
            given = [n.name if isinstance(n, Neighbour) else normalize_name(n) for n in neighbours]
            neighbour_list = find_neighbours(redacted, given)
            known_found = {n.name.casefold() for n in neighbour_list}
            keep = keep + given
        neighbour_names = {n.name.casefold() for n in neighbour_list}
        others = list(dict.fromkeys(n for n in keep if n.casefold() not in gone | neighbour_names))
        others += make_distractors(self.n_other_names, set(redacted) | set(keep) | neighbour_names,
                                              self.seed + 1)
        self.names_ = redacted
        self.forms_ = forms
        self.neighbours_ = neighbour_list
        sampler = CaptionSampler(redacted, self.neutral, clean, [n.name for n in neighbour_list], others, templates,
                                 self.template_fraction, self.name_caption_fraction, self.neighbour_fraction,
                                 known_neighbours=[n.name for n in neighbour_list if n.name.casefold() in known_found],
                                 forms=forms)
        self._train(loaded, sampler)
        self.source_ = loaded
        return self

    def _train(self, loaded: LoadedModel, sampler: CaptionSampler) -> None:
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        teacher = loaded.model
        # The student shares the image tower with the teacher (no copy, never trained).
        shared = {id(teacher.visual): teacher.visual} if hasattr(teacher, "visual") else None
        student = copy.deepcopy(teacher, memo=shared)
        student.eval()  # no dropout: a deterministic fine-tune
        trainable = set(text_parameter_names(student))
        if self.freeze_layernorm:
            trainable -= set(layernorm_parameter_names(student))
        params, anchors = student_parameters(student, teacher, trainable)
        device = next(student.parameters()).device
        tok = TokenCache(loaded.tokenizer)

        def terms(step: int) -> tuple[torch.Tensor, torch.Tensor]:
            named, neutral = sampler.redaction(self.batch_names, rng)
            clean = sampler.utility(self.batch_clean, rng)
            clean_tokens = tok(clean).to(device)
            with torch.no_grad(), autocast(device, self.precision):
                target_r = encode_text_features(teacher, tok(neutral).to(device)).float()
                target_u = encode_text_features(teacher, clean_tokens).float()
            with autocast(device, self.precision):  # mixed precision: the weights and the losses stay fp32
                named_f = encode_text_features(student, tok(named).to(device)).float()
                clean_f = encode_text_features(student, clean_tokens).float()
            return cosine_distance(named_f, target_r), cosine_distance(clean_f, target_u)

        self.losses_, self.seconds_ = train(
            params, anchors, terms, steps=self.steps, lr=self.lr, lr_milestones=self.lr_milestones, lr_gamma=0.5,
            weights=(1.0, self.redaction_weight, self.drift_weight), drift_norm=self.drift_norm,
            desc="redact names", progress=self.progress)
        self.student_ = student
        self.trained_tensors_ = sorted(trainable)
        self.checkpoint_sha256_before_ = loaded.checkpoint_sha256
        self.checkpoint_sha256_after_ = state_sha256(student)

    def defended(self) -> LoadedModel:
        """The defended model, ready for `run_attack` (its identity is the SHA-256 its saved checkpoint has)."""
        self._check_fitted()
        return self._defended_model("names redacted", self.source_.image_identity)

    def record(self) -> dict:
        """What redaction.json holds (without the manifest): names, settings, losses, hashes, time."""
        self._check_fitted()
        return {
            "kind": KIND_REDACTION, "schema_version": SCHEMA_VERSION,
            "names": self.names_, "neutral": self.neutral, "forms": self.forms_,
            "neighbours": [n.to_dict() for n in self.neighbours_],
            "hyperparameters": self.get_params(), "reference_hyperparameters": REFERENCE,
            "why_these_defaults": DEFAULTS_WHY,
            "seed": self.seed, "seconds": round(self.seconds_, 3),
            "trained_tensors": self.trained_tensors_,
            "checkpoint_sha256_before": self.checkpoint_sha256_before_,
            "checkpoint_sha256_after": self.checkpoint_sha256_after_,
            "losses": self.losses_, "warnings": self.warnings_,
        }

