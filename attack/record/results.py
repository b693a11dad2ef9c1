"""Typed results of an attack, serialised to versioned JSON: the record a report renders and a rerun compares.

Schema (version 1), `results.json`:
  schema_version, kind ("idia-attack")
  manifest      versions, command, seed, UTC time, SHA-256 of checkpoint, images, candidates, templates
  model         source, checkpoint, checkpoint_sha256, config_sha256, logit_scale
  rule          decided_by ("paper" | "calibrated-continuous"), tau, target_fpr, n_prompts, templates, ...
  candidates    n, source, sha256, added_true_names
  calibration   null distribution summary, threshold, reference FPR with Clopper-Pearson 95% interval (or null)
  metrics       with labels: TPR, FPR, accuracy, precision, ROC AUC, TPR at 1% and 0.1% FPR (or null)
  perturbation  the inference-time defense the attack ran through (or null)
  fdr           over the audited people: level, flagged, threshold p, expected false discoveries, Storey's pi0,
                how many people the model is estimated to know (a 95% lower bound and an estimate), and, when an
                FDR audit flags nobody though some stand out alone, why (attack.decide.fdr, decide.refine)
  agreement     every rule's verdicts on the audited people against the deciding rule's
  namesakes     flagged people grouped with near-identical names, and which name each one's photos prefer
  occurrences   with --occurrences: identification by how often people occur in the training data, in bins
                (attack.record.occurrences); each person's `occurrences` is their count, or null when not listed
  distractors   how the distractor names were drawn, and what they turned out to be (gender, origin counts);
                `groups`: every list drawn (per person with --attributes: one per given gender and origin), and
                each person's `distractor_group` names theirs
  encoding      device, precision, batch size, workers; which text blocks and how many photos came from a cache
  persons       audited people (see PersonResult); reference: the same for reference people
  not_auditable people with no usable image; warnings: every skipped file and other notices
The raw per-image, per-prompt predictions are in `scores.csv` beside it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from idia.errors import InputError

SCHEMA_VERSION = 1
KIND_ATTACK = "idia-attack"


# The report derives its checks of a record from these annotations (compliance.report.schema): keep them as
# precise as the JSON they describe.

class SkippedFile(TypedDict):
    file: str
    why: str  # why the photo was not used


class NotAuditable(TypedDict):
    name: str
    folder: str
    skipped: list[SkippedFile]  # empty when the folder held no photo files


@dataclass
class PromptVote:
    template: str
    vote: str | None  # the majority name, or None when names tied
    images_agreeing: int
    tie: bool
    is_true_name: bool


@dataclass
class ImageAnswer:
    file: str
    sha256: str
    top: list[tuple[str, float]]  # [[name, similarity], ...] (JSON lists) by similarity averaged over the prompts
    true_rank: float  # mean over prompts; 1 = the model's answer
    true_prob: float  # mean softmax probability of the true name
    top_tie: bool | None = None  # the first names of `top` score exactly alike: the photo has no first choice


@dataclass
class PersonResult:
    name: str
    n_images: int
    score: int  # the paper's: prompts whose majority vote is the true name
    member: bool
    p_value: float
    mean_log_prob: float  # continuous score: mean log-probability of the true name
    mean_rank: float
    mean_prob: float
    votes: list[PromptVote] = field(default_factory=list)
    images: list[ImageAnswer] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    label: bool | None = None  # ground truth, when known
    # permutation test, paper rule, aliases, name-prior control, stability (shape: attack.permutation's docstring)
    evidence: dict | None = None
    distractor_group: str | None = None  # id of the `distractors.groups` entry this person was asked among
    q_value: float | None = None  # BH-adjusted p-value over the audited people (reference people: None)
    occurrences: int | None = None  # captions naming them in the training data (--occurrences), when listed


@dataclass
class AttackResult:
    manifest: dict
    model: dict
    rule: dict
    candidates: dict
    calibration: dict | None
    metrics: dict | None
    persons: list[PersonResult]
    reference: list[PersonResult] = field(default_factory=list)
    not_auditable: list[NotAuditable] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    perturbation: dict | None = None
    encoding: dict | None = None  # device, precision, workers; which embeddings came from a cache
    distractors: dict | None = None  # how the distractors were drawn (the permutation test rests on it)
    fdr: dict | None = None  # over the audited: flagged, expected false discoveries, people the model knows (fdr.py)
    agreement: dict | None = None  # every rule's verdicts against the deciding rule's (decide.refine.agreement)
    namesakes: list | None = None  # flagged people grouped with near-identical names (decide.competition)
    occurrences: dict | None = None  # identification by occurrences in training (attack.record.occurrences)
    schema_version: int = SCHEMA_VERSION
    kind: str = KIND_ATTACK

    def person(self, name: str) -> PersonResult:
        for p in self.persons:
            if p.name == name:
                return p
        raise KeyError(name)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, d: dict) -> "AttackResult":
        if d.get("kind") != KIND_ATTACK:
            raise InputError(f"not an idia attack result (kind={d.get('kind')!r})")
        if d.get("schema_version") != SCHEMA_VERSION:
            raise InputError(f"results schema version {d.get('schema_version')!r} is not {SCHEMA_VERSION}")
        d = dict(d)
        for key in ("persons", "reference"):
            d[key] = [_person(p) for p in d.get(key, [])]
        return cls(**d)

    @classmethod
    def load(cls, path: str | Path) -> "AttackResult":
        """A results.json read (a regular file, bounded) and checked to hold together with the files beside it
        (`attack.record.check`), like every reader checks it."""
        from idia.attack.record.check import check_attack_record
        from idia.io import read_regular_bytes
        path = Path(path)
        raw = read_regular_bytes(path, what="results file", missing="no such results file")
        try:
            data = json.loads(raw.decode("utf-8"))
            result = cls.from_dict(data)
            check_attack_record(data, path.parent)
            return result
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise InputError(f"{path}: not a JSON results file ({e})") from None
        except (TypeError, KeyError, InputError) as e:
            raise InputError(f"{path}: {e}") from None


def _person(d: dict[str, Any]) -> PersonResult:
    d = dict(d)
    d["votes"] = [PromptVote(**v) for v in d.get("votes", [])]
    d["images"] = [ImageAnswer(**i) for i in d.get("images", [])]
    return PersonResult(**d)
