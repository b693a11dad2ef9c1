"""One settings object for an attack: what `idia attack`, `verify`, `defend sweep` and the YAML audit all run.

Every field carries its own help text, its command-line flag, its YAML key and its check, so the click options
and the YAML keys are derived from here instead of being retyped, and a value is validated once, whichever
entry point it came through: `AttackSettings(...).validate()` names the flag; the YAML reader calls
`check_value` and names the file and line.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from idia.attack.decide.levels import DEFAULT_ALPHA, DEFAULT_FDR
from idia.attack.inputs.distractors import DEFAULT_DRAW, DEFAULT_N_CANDIDATES, DISTRACTOR_DRAWS
from idia.errors import InputError

DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
PRECISIONS = ("fp32", "bf16", "fp16")
CANDIDATE_SETS = ("auto", "shared", "per-person")
DEFAULT_MAX_DISTRACTORS = 100_000
RAY_ADDRESS_PATTERN = re.compile(r"^(auto|(ray://)?[A-Za-z0-9.\-\[\]:]+:\d+)$")
DEFAULT_TARGET_FPR = 0.05
MAX_SEED = 2**32 - 1
# Settings the manifest leaves out: where caches live and how many processes decode change no number.
NOT_RECORDED = ("cache_dir", "workers", "ray_address")


def default_workers() -> int:
    """Photo-decoding worker processes: one per core beyond the one that runs the model, at least one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(8, cores - 1))


# --- checks: each returns None when the value is fine, else what is wrong with it (the caller names the field) ---

def at_least(low: int | float) -> Callable[[Any], str | None]:
    def check(value):
        if value is not None and value < low:
            return f"must be at least {low}, got {value}"
        return None
    return check


def above(low: int | float) -> Callable[[Any], str | None]:
    def check(value):
        if value is not None and not value > low:
            return f"must be above {low}, got {value}"
        return None
    return check


def between(low: int, high: int) -> Callable[[Any], str | None]:
    def check(value):
        if value is not None and not low <= value <= high:
            return f"must be between {low} and {high}, got {value}"
        return None
    return check


def open_unit(value) -> str | None:
    if value is not None and not 0 < value < 1:
        return f"must be between 0 and 1 (exclusive), got {value}"
    return None


def one_of(choices) -> Callable[[Any], str | None]:
    def check(value):
        if value is not None and value not in choices:
            return f"must be one of {', '.join(choices)}, got {value!r}"
        return None
    return check


def device_spec(value) -> str | None:
    if value is not None and not DEVICE_PATTERN.match(str(value)):
        return f"must be auto, cpu, cuda, cuda:N or mps, got {value!r}"
    return None


def ray_address(value) -> str | None:
    if value is not None and not RAY_ADDRESS_PATTERN.match(str(value)):
        return f"must be auto, ray://HOST:PORT or HOST:PORT, got {value!r}"
    return None


def rule_choice(value) -> str | None:
    from idia.attack.decide.rules import rule_names
    return one_of(rule_names())(value)


def engine_choice(value) -> str | None:
    from idia.attack.encode.engines import engine_names
    return one_of(engine_names())(value)


def _opt(flag: str | None, kind: str, help: str, check=None, yaml: str | None = "", group: str = "attack",
         required: bool = False) -> dict:
    """Field metadata: `flag` on the command line (None: not an option), `yaml` key ('' = the field's name,
    None = not in YAML), kind (path, str, int, float, bool, choice), and the one check."""
    return {"flag": flag, "kind": kind, "help": help, "check": check, "yaml": yaml, "group": group,
            "required": required}


@dataclass
class AttackSettings:
    """Everything an attack depends on. Stores; `validate()` checks; nothing else happens here."""

    model: str = field(metadata=_opt(
        "--model", "str", "open_clip architecture name (with --checkpoint), a model folder in open_clip's hub layout "
        "(optionally 'local-dir:FOLDER'), or a JSON architecture config (with --checkpoint). 'world' is the "
        "synthetic world's shipped model.", required=True, group="model"))
    people: Path = field(metadata=_opt(
        "--people", "path", "Folder with one sub-folder of photos per person, named by the person's full name.",
        required=True))
    checkpoint: str | None = field(default=None, metadata=_opt(
        "--checkpoint", "path", "Weights file (.safetensors preferred; .pt/.pth/.bin are read with weights_only=True).",
        group="model"))
    reference: Path | None = field(default=None, metadata=_opt(
        "--reference", "path", "Folder of known non-members, same layout: calibrates p-values and the verdict "
        "threshold."))
    labels: Path | None = field(default=None, metadata=_opt(
        "--labels", "path", "Ground truth JSON (name -> member true/false): adds TPR, FPR, AUC, ..."))
    candidates: Path | None = field(default=None, metadata=_opt(
        "--candidates", "path", "Candidate names, one per line (default: everyone audited plus made-up distractors)."))
    n_candidates: int = field(default=DEFAULT_N_CANDIDATES, metadata=_opt(
        "--n-candidates", "int", "How many names each person is picked among (the paper: 1,000).", at_least(2)))
    candidate_set: str = field(default="auto", metadata=_opt(
        "--candidate-set", "choice", "shared: everyone among one list of the audited names plus distractors (the "
        "paper's protocol); per-person: each person among their own name and the same n-1 distractors (text "
        "encoded once per name, work per photo independent of how many are audited); auto: shared unless more "
        "people are audited than the list holds.", one_of(CANDIDATE_SETS)))
    distractors: Path | None = field(default=None, metadata=_opt(
        "--distractors", "path", "Your own pool of distractor names, one per line (default: made-up first + last "
        "names from idia's bundled lists). The permutation test's assumption rests on how they were drawn."))
    distractor_draw: str = field(default=DEFAULT_DRAW, metadata=_opt(
        "--distractor-draw", "choice", "How distractors are drawn from idia's bundled lists: balanced (half female, "
        "half male first names, as the paper's authors draw them) or uniform (every bundled first name alike, "
        "idia's earlier draw). The report says which.", one_of(DISTRACTOR_DRAWS)))
    attributes: Path | None = field(default=None, metadata=_opt(
        "--attributes", "path", "CSV with the header name,gender,origin (gender f, m or empty; origin one of the "
        "bundled lists' regions or empty): each person listed is asked among distractors matched to what is given; "
        "people given the same share one list. Needs the per-person question (auto picks it)."))
    aliases: Path | None = field(default=None, metadata=_opt(
        "--aliases", "path", "Other names people are known by (YAML name: [alias, ...], or TSV): any of them may be "
        "the one the model knows; the test accounts for trying several (shared candidate list only)."))
    occurrences: Path | None = field(default=None, metadata=_opt(
        "--occurrences", "path", "How often each person occurs in the training data: the names.csv of `idia scan` "
        "(name,count). Recorded per person; the audit report plots identification against it."))
    prompts: Path | None = field(default=None, metadata=_opt(
        "--prompts", "path", "Prompt templates, one per line with '{0}' for the name (default: the paper's 21)."))
    rule: str = field(default="auto", metadata=_opt(
        "--rule", "choice", "What decides: name-and-face (the name among made-up names on the person's photos, and "
        "the person's photos among other people's for the name; the larger p-value decides; needs no reference "
        "people), permutation (the name side alone), paper (score >= --tau), calibrated (the continuous score "
        "against --reference people at --target-fpr); auto: paper with --tau, calibrated with --target-fpr, else "
        "name-and-face. Every result keeps every rule's figures.", rule_choice, yaml="attack.rule"))
    alpha: float | None = field(default=None, metadata=_opt(
        "--alpha", "float", "Flag each person on their own when their p-value is at most this (the per-person test, "
        "as a takedown asks). Default: with more than one person audited, --fdr decides; one person: "
        f"{DEFAULT_ALPHA}.", open_unit, yaml="attack.alpha"))
    fdr: float = field(default=DEFAULT_FDR, metadata=_opt(
        "--fdr", "float", "With more than one person audited and no --alpha: flag by Benjamini-Hochberg so that the "
        "expected share of false alarms among the flagged stays at or below this.", open_unit, yaml="attack.fdr"))
    max_distractors: int = field(default=DEFAULT_MAX_DISTRACTORS, metadata=_opt(
        "--max-distractors", "int", "At most this many distractors per person near the threshold: the p-value is "
        "refined sequentially (Besag-Clifford) with further names drawn like the first, as many as the level needs "
        "(BH at --fdr over the audit, or alpha / 10), never more than this nor than the lists hold.",
        at_least(1), yaml="attack.max_distractors"))
    tau: int | None = field(default=None, metadata=_opt(
        "--tau", "int", "Paper rule: member if at least this many prompts vote the true name (default 1).",
        at_least(1), yaml="attack.tau"))
    target_fpr: float | None = field(default=None, metadata=_opt(
        "--target-fpr", "float", "With --reference: the false-positive rate the calibrated threshold keeps "
        f"(default {DEFAULT_TARGET_FPR}).", open_unit, yaml="attack.target_fpr"))
    max_images: int | None = field(default=None, metadata=_opt(
        "--max-images", "int", "Use at most N photos per person (the first N by file name).", at_least(1)))
    seed: int = field(default=0, metadata=_opt(
        "--seed", "int", "Seed for the distractor names (and every other random choice).", between(0, MAX_SEED)))
    device: str = field(default="auto", metadata=_opt(
        "--device", "str", "auto (CUDA when present, else CPU), cpu, cuda, cuda:N or mps.", device_spec,
        group="runtime"))
    precision: str = field(default="fp32", metadata=_opt(
        "--precision", "choice", "Arithmetic of the model's forward passes.", one_of(PRECISIONS), group="runtime"))
    workers: int | None = field(default=None, metadata=_opt(
        "--workers", "int", "Processes decoding photos while the model encodes (default: cores - 1; 0 decodes "
        "in the main process).", at_least(0), group="runtime"))
    fast_decode: bool = field(default=False, metadata=_opt(
        "--fast-decode/--exact-decode", "bool", "Decode JPEGs reduced in the DCT domain (by 1/2, 1/4 or 1/8) to no "
        "less than twice the model's input size before the model's own resize: several times less decoding for "
        "camera photos, embeddings within a small measured tolerance of the exact decode (bench/bench_photos.py). "
        "Off by default: evidence uses the model's own preprocessing exactly.", group="runtime"))
    batch_size: int = field(default=64, metadata=_opt(
        "--batch-size", "int", "Photos per forward pass.", at_least(1), group="runtime"))
    cache_dir: Path | None = field(default=None, metadata=_opt(
        "--cache-dir", "path", "Embedding caches, text and image (default $IDIA_CACHE_DIR or ~/.cache/idia).",
        group="runtime"))
    engine: str = field(default="local", metadata=_opt(
        "--engine", "choice", "Who encodes the photos: local (this machine: a DataLoader and the model on "
        "--device) or ray (Ray Data actors, one model each, one GPU each where the cluster has GPUs). Same "
        "results, same caches.", engine_choice, group="runtime"))
    ray_address: str | None = field(default=None, metadata=_opt(
        "--ray-address", "str", "With --engine ray: the cluster to join (auto: the one `ray start` set up on "
        "this machine; ray://HOST:PORT: a remote head). Default: start a local Ray with this machine's CPUs.",
        ray_address, group="runtime"))
    progress: bool = field(default=True, metadata=_opt(None, "bool", "Show progress bars.", yaml=None))
    command: str | None = field(default=None, metadata=_opt(None, "str", "The command line, for the manifest.",
                                                            yaml=None))
    extra_inputs: dict = field(default_factory=dict, metadata=_opt(None, "dict", "More inputs for the manifest.",
                                                                   yaml=None))
    model_info: dict | None = field(default=None, metadata=_opt(
        None, "dict", "The model beyond its path, as the audit's config states it (provider, version, "
        "obtained_from); recorded in the manifest.", yaml=None))
    decision_boundary: dict | None = field(default=None, metadata=_opt(
        None, "dict", "An earlier run's decision boundary (results.json's rule.boundary), applied as it is instead "
        "of the rule fitting its own: a verification judges the model after a defense as the model before it.",
        yaml=None))

    def validate(self) -> "AttackSettings":
        """Raise InputError naming the first bad value's flag; returns self so calls chain."""
        for f in dataclasses.fields(self):
            problem = check_value(f.name, getattr(self, f.name))
            if problem:
                raise InputError(f"{f.metadata['flag'] or f.name} {problem}")
        if self.ray_address is not None and self.engine != "ray":
            raise InputError("--ray-address is for --engine ray")
        if self.tau is not None and self.target_fpr is not None:
            raise InputError("give either --tau or --target-fpr, not both")
        if self.attributes is not None:
            conflict = ("--candidate-set shared" if self.candidate_set == "shared" else
                        "--candidates" if self.candidates else "--distractors" if self.distractors else
                        "--aliases" if self.aliases else None)
            if conflict:
                raise InputError(f"--attributes draws each person's distractors from idia's bundled lists in the "
                                 f"per-person question; it cannot be combined with {conflict}")
        return self

    def recorded(self) -> dict:
        """What decides the numbers, as the manifest records it (`idia check --rerun` rebuilds the settings from
        it): every YAML setting but where caches live and how many processes decode, paths as text."""
        out = {}
        for f in dataclasses.fields(self):
            if f.metadata["yaml"] is None or f.name in NOT_RECORDED:
                continue
            value = getattr(self, f.name)
            out[f.name] = str(value) if isinstance(value, Path) else value
        return out

    @classmethod
    def from_recorded(cls, recorded: dict, **changes) -> "AttackSettings":
        """Settings from a manifest's `settings` block (`recorded`), with `changes`; unknown keys are refused."""
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(recorded) - set(names))
        if unknown:
            raise InputError(f"the recorded settings hold keys this idia does not know: {', '.join(unknown)}")
        values = {k: (Path(v) if names[k].metadata["kind"] == "path" and v is not None and k != "checkpoint"
                      else v) for k, v in recorded.items()}
        return cls(**{**values, **changes})

    def check_output(self, out: str | Path, flag: str = "--out") -> None:
        """Refuse an output folder inside --people or --reference: the next run would read it as a person."""
        where = Path(out).resolve()
        for name, folder in (("--people", self.people), ("--reference", self.reference)):
            if folder is not None and (where == Path(folder).resolve() or Path(folder).resolve() in where.parents):
                raise InputError(f"{flag} {out}: is inside {name} {folder}; the next run would read it as a person "
                                 "folder. Choose an output folder outside it")

    def replace(self, **changes) -> "AttackSettings":
        return dataclasses.replace(self, **changes)

    @property
    def calibration_target_fpr(self) -> float:
        """The calibrated rule's target false-positive rate: the one given, else the default."""
        return self.target_fpr if self.target_fpr is not None else DEFAULT_TARGET_FPR

    @property
    def n_workers(self) -> int:
        return default_workers() if self.workers is None else self.workers


def setting_fields(group: str | None = None) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(AttackSettings) if group is None or f.metadata["group"] == group]


def check_value(name: str, value) -> str | None:
    """What is wrong with `value` for the field `name`, or None."""
    meta = AttackSettings.__dataclass_fields__[name].metadata
    if value is None or meta["check"] is None:
        return None
    if meta["kind"] == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        return f"must be a whole number, got {value!r}"
    if meta["kind"] == "float" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return f"must be a number, got {value!r}"
    return meta["check"](value)


def yaml_keys() -> dict[str, tuple[str, str]]:
    """{yaml key (dotted for nested): (field name, kind)} for every setting a YAML audit may set."""
    out = {}
    for f in dataclasses.fields(AttackSettings):
        key = f.metadata["yaml"]
        if key is None:
            continue
        out[key or f.name] = (f.name, f.metadata["kind"])
    return out


def choices(name: str) -> tuple[str, ...]:
    """The values a choice setting takes; rules and engines are read from their registries, only when asked."""
    if name == "rule":
        from idia.attack.decide.rules import rule_names
        return rule_names()
    if name == "engine":
        from idia.attack.encode.engines import engine_names
        return engine_names()
    return {"precision": PRECISIONS, "candidate_set": CANDIDATE_SETS, "distractor_draw": DISTRACTOR_DRAWS}[name]
