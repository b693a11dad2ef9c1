"""Verification, the point of a defense: attack before, defend, attack after, utility before and after, one record.

`verify` measures, for the same photos and the same attack settings: the redacted people (did they stop being
identified?), their name neighbours (people who share a first or last name with a redacted person: did the
defense erase them too?), the other members (collateral), and zero-shot utility. `write_verification` writes
`verification.json` (kind "idia-verification", schema 1; shape below) and the two attack results it came from,
`before/results.json` and `after/results.json`, plus the defense itself (`defended-model/` or
`perturbation.json`) so the attack can be rerun on it.

verification.json:
  kind, schema_version, manifest
  defense     {kind: redact|perturb, settings, record: {losses, checkpoint_sha256_before, checkpoint_sha256_after,
              seconds}}
  redacted    [{name, before, after}]               before/after: {score, member, p_value, mean_log_prob}
  neighbours  [{name, shares: first|last, with, before, after}]  people who share a first or last name with a
              redacted person (with labels: members only)
  collateral  [{name, before, after}]  labelled members neither redacted nor neighbours (without labels: every
              audited person neither redacted nor a neighbour)
  summary     {redacted|neighbours|collateral: {n, identified_before, identified_after, rate_before, rate_after},
              utility: {task, n_images, n_classes, top1_before, top1_after} or null without --utility}
  sweep       null or {kind, rows: [{strength, redacted_rate, others_rate, utility_top1}]}
  attack_before "before/results.json", attack_after "after/results.json"
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from attack.errors import InputError
from attack.io import atomic_write_json, sha256_file
from attack.manifest import build_manifest
from attack.models import LoadedModel, load_clip
from attack.names import read_name_file
from attack.results import PersonResult
from attack.device import runtime_facts
from attack.encoder import Encoder
from attack.run import AttackRun, run_attack, write_attack
from attack.settings import AttackSettings

from .perturb import make_perturbation
from .redact import DEFAULT_NEUTRAL, NameRedactor, find_neighbours, read_captions, read_redaction_names
from .sweep import Sweep, sweep
from .utility import DEFAULT_PROMPT, ZeroShotTask

KIND_VERIFICATION = "idia-verification"
SCHEMA_VERSION = 1
DEFENSES = ("redact", "perturb")


@dataclass
class VerifyConfig:
    """A verification: the attack's settings (before and after are attacked alike) and the defense's."""

    attack: AttackSettings
    names: Path
    defense: str = "redact"
    kind: str = "project"  # perturbation kind
    strength: float | None = None  # perturbation strength (default per kind)
    strengths: Sequence[float] | None = None  # perturbation sweep
    utility: Path | None = None
    utility_prompt: str = DEFAULT_PROMPT
    steps: int | None = None  # redaction steps (default: NameRedactor's)
    neutral: str = DEFAULT_NEUTRAL
    captions: Path | None = None
    keep_names: Path | None = None
    redactor: dict = field(default_factory=dict)  # further NameRedactor settings
    out: Path | None = None  # for `run_verification`


@dataclass
class Verification:
    record: dict
    before: AttackRun
    after: AttackRun
    defense: object  # the fitted NameRedactor or perturbation
    sweep: Sweep | None = None


def person_summary(p: PersonResult) -> dict:
    return {"score": p.score, "member": p.member, "p_value": p.p_value, "mean_log_prob": p.mean_log_prob}


def group_summary(rows: list[dict]) -> dict:
    n = len(rows)
    before = sum(r["before"]["member"] for r in rows)
    after = sum(r["after"]["member"] for r in rows)
    return {"n": n, "identified_before": before, "identified_after": after,
            "rate_before": before / n if n else 0.0, "rate_after": after / n if n else 0.0}


def compare(before: AttackRun, after: AttackRun, names: Sequence[str]) -> dict:
    """The redacted, neighbours and collateral sections and their summaries, from two attacks on the same people."""
    b = {p.name: p for p in before.result.persons}
    a = {p.name: p for p in after.result.persons}
    gone = {n.casefold() for n in names}
    pair = lambda name: {"before": person_summary(b[name]), "after": person_summary(a[name])}  # noqa: E731
    labelled = any(p.label is not None for p in b.values())
    counted = [n for n, p in b.items() if (p.label if labelled else True)]  # members, or everyone without labels
    redacted = [{"name": n, **pair(n)} for n in b if n.casefold() in gone]
    neighbours = [{"name": nb.name, "shares": nb.shares, "with": nb.with_, **pair(nb.name)}
                  for nb in find_neighbours(list(names), counted)]
    near = {nb["name"] for nb in neighbours}
    collateral = [{"name": n, **pair(n)} for n in counted if n.casefold() not in gone and n not in near]
    return {"redacted": redacted, "neighbours": neighbours, "collateral": collateral,
            "summary": {"redacted": group_summary(redacted), "neighbours": group_summary(neighbours),
                        "collateral": group_summary(collateral)}}


def verify(cfg: VerifyConfig, loaded: LoadedModel | None = None,
           warn: Callable[[str], None] | None = None) -> Verification:
    """Attack, defend, attack again, and measure what the defense cost."""
    if cfg.defense not in DEFENSES:
        raise InputError(f"--defense must be one of {', '.join(DEFENSES)}, got {cfg.defense!r}")
    if cfg.strengths and cfg.defense != "perturb":
        raise InputError("a strength sweep is for --defense perturb")
    names = read_redaction_names(cfg.names)
    attack = cfg.attack.validate()
    loaded = loaded or load_clip(attack.model, attack.checkpoint)
    encoder = Encoder.from_settings(loaded, attack, warn=warn)
    before = run_attack(attack, warn=warn, encoder=encoder)
    audited = {p.name.casefold() for p in before.result.persons}
    unmeasured = [n for n in names if n.casefold() not in audited]
    if unmeasured and warn:
        warn(f"{cfg.names}: {len(unmeasured)} name(s) to redact have no photos among {attack.people}, so their "
             f"redaction is not measured, e.g. {unmeasured[0]!r}")
    task = ZeroShotTask.encode(loaded, cfg.utility, cfg.utility_prompt, attack.progress, encoder) if cfg.utility else None

    # Everyone photographed for this verification is a real name whose neighbours the redaction must spare.
    seen = [p.name for p in before.result.persons + before.result.reference]
    defense, after, top1_after, settings, record = _defend(cfg, encoder, names, task, warn, seen)
    swept = None
    if cfg.strengths:
        swept = sweep(encoder, names, cfg.kind, cfg.strengths, attack, task, seed=attack.seed)  # warnings: swept

    sections = compare(before, after, names)
    utility = None
    if task is not None:
        utility = {"task": task.summary(0.0)["task"], "n_images": int(len(task.image_label)),
                   "n_classes": len(task.labels), "top1_before": task.top1(), "top1_after": top1_after}
    inputs = {
        "checkpoint": {"path": loaded.checkpoint, "sha256": loaded.checkpoint_sha256},
        "checkpoint_sha256_before": record["checkpoint_sha256_before"],
        "checkpoint_sha256_after": record["checkpoint_sha256_after"],
        "model_config_sha256": loaded.config_sha256,
        "names": {"file": str(cfg.names), "sha256": sha256_file(cfg.names), "names": names},
        "labels_sha256": sha256_file(attack.labels) if attack.labels else None,
        "keep_names_sha256": sha256_file(cfg.keep_names) if cfg.keep_names else None,
        "captions_sha256": sha256_file(cfg.captions) if cfg.captions else None,
        "utility": {"folder": str(cfg.utility), "prompt": cfg.utility_prompt} if cfg.utility else None,
        "people": str(attack.people), "reference": str(attack.reference) if attack.reference else None,
    }
    out = {
        "kind": KIND_VERIFICATION, "schema_version": SCHEMA_VERSION,
        "manifest": build_manifest(attack.seed, inputs, attack.command,
                                   extra={"runtime": {**runtime_facts(encoder.torch_device, encoder.precision),
                                                      "engine": encoder.engine_description()}}),
        "defense": {"kind": cfg.defense, "settings": settings, "record": record},
        "redacted": sections["redacted"], "neighbours": sections["neighbours"], "collateral": sections["collateral"],
        "summary": {**sections["summary"], "utility": utility},
        "sweep": swept.to_dict() if swept else None,
        "attack_before": "before/results.json", "attack_after": "after/results.json",
    }
    return Verification(record=out, before=before, after=after, defense=defense, sweep=swept)


def _defend(cfg: VerifyConfig, encoder: Encoder, names: list[str], task: ZeroShotTask | None, warn,
            seen: list[str]) -> tuple[object, AttackRun, float | None, dict, dict]:
    """Apply the defense and attack again: (defense, attack after, top-1 after, settings, record)."""
    t0 = time.perf_counter()
    attack, loaded = cfg.attack, encoder.loaded
    if cfg.defense == "redact":
        params = {"neutral": cfg.neutral, "seed": attack.seed, "progress": attack.progress,
                  "precision": encoder.precision, **cfg.redactor}
        if cfg.steps is not None:
            params["steps"] = cfg.steps
        keep = seen + (read_name_file(cfg.keep_names) if cfg.keep_names else [])
        defense = NameRedactor(**params).fit(loaded, names, read_captions(cfg.captions) if cfg.captions else None,
                                             keep_names=keep or None, warn=warn)
        after_encoder = encoder.with_model(defense.defended())  # the same image tower: its photos come cached
        after = run_attack(attack, encoder=after_encoder)
        top1_after = (ZeroShotTask.encode(after_encoder.loaded, cfg.utility, cfg.utility_prompt,
                                          encoder=after_encoder).top1() if task else None)
        record = {"losses": defense.losses_, "checkpoint_sha256_before": defense.checkpoint_sha256_before_,
                  "checkpoint_sha256_after": defense.checkpoint_sha256_after_, "seconds": round(defense.seconds_, 3)}
        return defense, after, top1_after, defense.get_params(), record
    defense = make_perturbation(cfg.kind, cfg.strength, seed=attack.seed).fit(loaded, names)
    record = {"losses": [], "checkpoint_sha256_before": loaded.checkpoint_sha256, "checkpoint_sha256_after": None,
              "seconds": round(time.perf_counter() - t0, 3)}
    after = run_attack(attack, perturbation=defense, encoder=encoder)
    return defense, after, task.top1(defense) if task else None, defense.describe(), record


def write_verification(v: Verification, out: str | Path) -> Path:
    """The two attacks, the defense and the sweep first, verification.json last: it never points at a missing file."""
    out = Path(out)
    outputs = {}
    for key, run in (("attack_before", v.before), ("attack_after", v.after)):
        path = write_attack(run, out / Path(v.record[key]).parent)
        outputs[v.record[key]] = {"sha256": sha256_file(path)}
    if v.record["defense"]["kind"] == "redact":
        folder = v.defense.save(out / "defended-model", command=v.record["manifest"]["command"])
        outputs["defended-model/"] = {"checkpoint_sha256": v.defense.checkpoint_sha256_after_}
        outputs["defended-model/redaction.json"] = {"sha256": sha256_file(folder / "redaction.json")}
    else:
        outputs["perturbation.json"] = {"sha256": sha256_file(v.defense.save(out / "perturbation.json"))}
    if v.sweep is not None:
        v.sweep.write(out)
        outputs["sweep.csv"] = {"sha256": sha256_file(out / "sweep.csv")}
    v.record["manifest"]["outputs"] = outputs
    return atomic_write_json(out / "verification.json", v.record)


def run_verification(cfg: VerifyConfig, loaded: LoadedModel | None = None,
                     warn: Callable[[str], None] | None = None) -> Path:
    """`verify` and `write_verification` to `cfg.out`, in one call; returns the path of verification.json."""
    if cfg.out is None:
        raise InputError("no output folder given for the verification")
    return write_verification(verify(cfg, loaded, warn), cfg.out)
