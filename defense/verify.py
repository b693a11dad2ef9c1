"""Verification, the point of a defense: attack before, defend, attack after, utility before and after, one record.

`verify` measures, for the same photos and the same attack settings: the redacted people (did they stop being
identified?), their name neighbours (people who share a first or last name with a redacted person: did the
defense erase them too?), the other members (collateral), the non-members (did the defense make the attack name
someone it never saw?), and zero-shot utility with its interval. Every attack after the defense is judged at the
decision boundary the attack before it was judged at (the rule's own recorded boundary, `attack.decide.rules`),
with the after model's recalibrated verdicts beside it; the probes (unseen photos, held-out phrasings, every name
variant, relearning) and the one verdict are `defense.judge`'s. `write_verification` writes `verification.json`
(its shape: `idia.defense.record`) and the attack results it came from, `before/results.json`,
`after/results.json` and `after-recalibrated/results.json`, plus the defense itself (`defended-model/` or
`perturbation.json`) so the attack can be rerun on it.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from idia.attack.encode.encoder import Encoder
from idia.attack.inputs.prompts import read_prompts
from idia.attack.inputs.scan import scan
from idia.attack.model.adapter import LoadedModel
from idia.attack.model.load import load_clip
from idia.attack.run import AttackRun, run_attack, write_attack
from idia.attack.settings import AttackSettings
from idia.defense import base, judge
from idia.defense.judge import compare, group_summary, person_summary  # noqa: F401  (the verification's groups)
from idia.defense.probes import (
    VARIANTS,
    PhotoSplit,
    heldout_templates_path,
    name_variant,
    people_view,
    photo_sets,
    split_photos,
    variant_view,
)
from idia.defense.record import KIND_VERIFICATION, SCHEMA_VERSION
from idia.defense.redact import read_redaction_names
from idia.defense.relearn import relearn
from idia.defense.tuning import face_tuning
from idia.defense.sweep import Sweep, sweep
from idia.defense.utility import DEFAULT_PROMPT, ZeroShotTask, paired_change
from idia.errors import InputError
from idia.io import atomic_write_json, sha256_file
from idia.manifest import build_manifest
from idia.runtime import runtime_facts


@dataclass
class VerifyConfig:
    """A verification: the attack's settings (before and after are attacked alike) and the defense's."""

    attack: AttackSettings
    names: Path
    defense: str = "redact"  # a family of the registry (defense.base)
    kind: str | None = None  # perturb: the variant (None: the registry's default)
    tower: str | None = None  # redact: the variant, or "both" (None: the registry's default)
    strength: float | None = None  # perturbation strength (default per kind)
    strengths: Sequence[float] | None = None  # perturbation sweep
    side: str = "text"  # projection side
    utility: Path | None = None
    utility_prompt: str = DEFAULT_PROMPT
    steps: int | None = None  # redaction steps (default: the redactor's)
    lr: float | None = None
    preset: str | None = None  # redaction settings: "authors"
    neutral: str | None = None  # text redaction target (default 'a person'; the authors' preset: 'human')
    face_target: str | None = None  # image redaction target (default 'name-null'; the authors' preset: 'mean')
    captions: Path | None = None
    keep_names: Path | None = None
    redactor: dict = field(default_factory=dict)  # further NameRedactor settings
    face_redactor: dict = field(default_factory=dict)  # further FaceRedactor settings
    split_photos: bool | None = None  # attack only photos the defense never saw (default: when it trains on photos)
    probes: bool = True  # the held-out-phrasing and name-variant attacks
    probe_variants: Sequence[str] = VARIANTS  # the name variants probed (all of them, redacted or not)
    variants: str | Sequence[str] | None = None  # redact: the forms also redacted (first, last, initials)
    relearn_steps: Sequence[int] = ()  # the relearning probe's step counts (none: no probe)
    out: Path | None = None  # for `run_verification`; also where the photo views are kept

    def chain(self) -> list[type]:
        """The registered defenses to apply, in order."""
        return base.resolve(self.defense, self.tower if self.defense == "redact" else self.kind)

    def options(self) -> dict:
        return {"neutral": self.neutral, "face_target": self.face_target, "steps": self.steps, "lr": self.lr,
                "preset": self.preset, "captions": self.captions, "keep_names": self.keep_names,
                "strength": self.strength, "side": self.side, "redactor": self.redactor,
                "face_redactor": self.face_redactor, "variants": self.variants}


@dataclass
class Verification:
    record: dict
    before: AttackRun
    after: AttackRun  # judged at the before run's decision boundary
    defense: object  # the fitted estimator (NameRedactor, FaceRedactor, perturbation)
    sweep: Sweep | None = None
    applied: base.Applied | None = None
    recalibrated: AttackRun | None = None  # the after model judged at its own boundary (None: the same as after)


def _views_root(cfg: VerifyConfig) -> Path:
    if cfg.out is not None:
        return Path(cfg.out) / "views"
    return Path(tempfile.mkdtemp(prefix="idia-verify-"))


def attack_at(applied: base.Applied, settings: AttackSettings, encoder: Encoder,
              before: AttackRun) -> tuple[AttackRun, AttackRun]:
    """The defended model attacked (at the `before` run's decision boundary, and at its own): the second attack
    is run only when the boundaries differ (a rule that fits its boundary to the data, e.g. calibrated)."""
    own = applied.attack(settings, encoder)
    boundary = before.result.rule.get("boundary")
    if boundary is None or own.result.rule.get("boundary") == boundary:
        return own, own
    return applied.attack(settings.replace(decision_boundary=boundary), encoder), own


def verify(cfg: VerifyConfig, loaded: LoadedModel | None = None,
           warn: Callable[[str], None] | None = None) -> Verification:
    """Attack, defend, attack again, and measure what the defense cost: on the attack's own prompts, on held-out
    phrasings, on name variants, and after a little relearning; then the one verdict."""
    chain = cfg.chain()
    if cfg.strengths and cfg.defense != "perturb":
        raise InputError("a strength sweep is for --defense perturb")
    if cfg.defense == "perturb" and cfg.strength is not None and not cfg.strength > 0:
        raise InputError(f"--strength must be above 0 (0 turns the defense off), got {cfg.strength}")
    names = read_redaction_names(cfg.names)
    attack = cfg.attack.validate()
    loaded = loaded or load_clip(attack.model, attack.checkpoint)
    encoder = Encoder.from_settings(loaded, attack, warn=warn)
    views = _views_root(cfg)
    split = _split(cfg, chain, attack, names, warn)
    if split is not None:  # only the verify halves are attacked
        attack = attack.replace(people=people_view(views / "verify-people", split.verify))
    before = run_attack(attack, warn=warn, encoder=encoder)
    audited = {p.name.casefold() for p in before.result.persons}
    unmeasured = [n for n in names if n.casefold() not in audited]
    if unmeasured and warn:
        warn(f"{cfg.names}: {len(unmeasured)} name(s) to redact have no photos among {attack.people}, so their "
             f"redaction is not measured, e.g. {unmeasured[0]!r}")
    task = ZeroShotTask.encode(loaded, cfg.utility, cfg.utility_prompt, attack.progress, encoder) if cfg.utility else None

    applied, retain = _defend(cfg, chain, names, attack, encoder, before, split, warn)
    after, recalibrated = attack_at(applied, attack, encoder, before)
    swept = None
    if cfg.strengths:  # warnings: swept.warnings
        swept = sweep(encoder, names, chain[0].variant, cfg.strengths, attack, task, seed=attack.seed)
    sections = compare(before, after, names, recalibrated)
    utility = _utility(cfg, task, applied, encoder)
    probes = _probes(cfg, attack, encoder, applied, names, before, after, views) if cfg.probes else None
    relearning = None
    if cfg.relearn_steps and applied.loaded is not None:
        relearning = _relearning(cfg, attack, encoder, applied, names, sections, retain, before)
    record = applied.record
    not_run = judge.not_run(cfg, chain, split is not None, applied.loaded is not None, cfg.probe_variants)
    out = {
        "kind": KIND_VERIFICATION, "schema_version": SCHEMA_VERSION,
        "manifest": build_manifest(attack.seed, _inputs(cfg, attack, loaded, names, record), attack.command,
                                   runtime=runtime_facts(encoder.torch_device, encoder.precision,
                                                         encoder.engine_description())),
        "defense": {"kind": cfg.defense, "variant": applied.name, "settings": applied.settings, "record": record,
                    "tuning": face_tuning() if any(d.family == "redact" and d.variant == "image" for d in chain)
                    else None},
        "decision": {"judged_at": "the before attack's decision boundary", "before": judge.boundary_of(before),
                     "after_recalibrated": judge.boundary_of(recalibrated)},
        **{k: sections[k] for k in ("redacted", "neighbours", "collateral", "nonmembers")},
        "summary": {**sections["summary"], "utility": utility},
        "photos": split.to_dict() if split else None,
        "probes": probes, "relearning": relearning, "probes_not_run": not_run,
        "verdict": judge.verdict([r["name"] for r in sections["redacted"]],
                                 _identified(split is not None or not any(d.needs_photos for d in chain),
                                             sections, probes, relearning), not_run),
        "sweep": swept.to_dict() if swept else None,
        "attack_before": "before/results.json", "attack_after": "after/results.json",
        "rule": {k: before.result.rule.get(k) for k in ("decided_by", "alpha", "level", "assumption", "breaks_if")},
        "attack_after_recalibrated": None if recalibrated is after else "after-recalibrated/results.json",
    }
    return Verification(record=out, before=before, after=after, defense=applied.estimator, sweep=swept,
                        applied=applied, recalibrated=None if recalibrated is after else recalibrated)


def _utility(cfg: VerifyConfig, task: ZeroShotTask | None, applied: base.Applied, encoder: Encoder) -> dict | None:
    """Top-1 before and after on the same images, with 95% intervals and the paired change's."""
    if task is None:
        return None
    after = applied.correct(task, cfg.utility, cfg.utility_prompt, encoder)
    return {"task": task.summary(0.0)["task"], "n_images": int(len(task.image_label)),
            "n_classes": len(task.labels), **paired_change(task.correct(), after)}


def _identified(unseen: bool, sections: dict, probes: dict | None, relearning: dict | None) -> dict:
    """{probe: the redacted people it still identifies at the before boundary}, for every probe run."""
    main = [r["name"] for r in sections["redacted"] if r["after"]["member"]]
    out = {judge.PROBE_UNSEEN if unseen else judge.PROBE_TEMPLATES: main}
    for row in (probes or {}).get("rows", [])[1:]:
        out[row["id"]] = row["redacted_identified_after"]
    for row in (relearning or {}).get("rows", []):
        out[f"{judge.PROBE_RELEARNING}:{row['steps']}"] = row["identified"]
    return out


def _split(cfg: VerifyConfig, chain: list[type], attack: AttackSettings, names: list[str],
           warn: Callable[[str], None] | None) -> PhotoSplit | None:
    """Every person's photos split into unlearn and verify halves, when the defense trains on photos (or
    `split_photos` asks for it): the attacks then see only photos the defense never saw."""
    split_on = cfg.split_photos if cfg.split_photos is not None else any(d.needs_photos for d in chain)
    if not split_on:
        return None
    return split_photos(scan(attack, warn or (lambda m: None)).audit, attack.seed, need=names)


def _defend(cfg: VerifyConfig, chain: list[type], names: list[str], attack: AttackSettings, encoder: Encoder,
            before: AttackRun, split: PhotoSplit | None,
            warn: Callable[[str], None] | None) -> tuple[base.Applied, list[Path]]:
    """The defense fitted on the model attacked `before`; and the photos it kept (other people's unlearn halves),
    which the relearning probe trains on."""
    audited = {p.name.casefold() for p in before.result.persons}
    # Everyone photographed for this verification is a real name whose neighbours the redaction must spare.
    seen = [p.name for p in before.result.persons + before.result.reference]
    unlearn, retain = photo_sets(split, names) if split else ({}, {})
    if any(d.needs_photos for d in chain):
        missing = [n for n in names if n.casefold() in audited and n not in unlearn]
        if not unlearn:
            raise InputError(f"{cfg.attack.people}: none of the names to redact has photos there; image redaction "
                             "needs them (one folder per person)")
        if missing and warn:
            warn(f"{len(missing)} redacted name(s) have no unlearn photos, e.g. {missing[0]!r}")
    context = base.DefenseContext(loaded=encoder.loaded, encoder=encoder, names=names, seed=attack.seed,
                                  progress=attack.progress, known_names=seen, unlearn_photos=unlearn,
                                  retain_photos=retain, warn=warn)
    return base.apply_chain(chain, context, cfg.options()), [p for ps in retain.values() for p in ps]


def _inputs(cfg: VerifyConfig, attack: AttackSettings, loaded: LoadedModel, names: list[str], record: dict) -> dict:
    """The manifest's inputs: every file the verification read, by SHA-256, and the checkpoints before and after."""
    return {
        "checkpoint": {"path": loaded.checkpoint, "sha256": loaded.checkpoint_sha256},
        "checkpoint_sha256_before": record["checkpoint_sha256_before"],
        "checkpoint_sha256_after": record["checkpoint_sha256_after"],
        "model_config_sha256": loaded.config_sha256,
        "names": {"file": str(cfg.names), "sha256": sha256_file(cfg.names), "names": names},
        "labels_sha256": sha256_file(attack.labels) if attack.labels else None,
        "keep_names_sha256": sha256_file(cfg.keep_names) if cfg.keep_names else None,
        "captions_sha256": sha256_file(cfg.captions) if cfg.captions else None,
        "utility": {"folder": str(cfg.utility), "prompt": cfg.utility_prompt} if cfg.utility else None,
        "people": str(cfg.attack.people), "reference": str(attack.reference) if attack.reference else None,
    }


def _probe_row(probe: str, label: str, before: AttackRun, after: AttackRun, names: Sequence[str],
               full: dict[str, str] | None = None, **extra) -> dict:
    """One probe's summary; `redacted_identified_after` names the redacted people (by their full names, `full`
    maps a variant back) it still identifies at the before boundary."""
    c = compare(before, after, names)
    s = c["summary"]
    others = {k: s["neighbours"][k] + s["collateral"][k] for k in ("n", "identified_before", "identified_after")}
    still = [(full or {}).get(r["name"], r["name"]) for r in c["redacted"] if r["after"]["member"]]
    return {"id": probe, "probe": label, "redacted": s["redacted"], "others": others,
            "nonmembers": s["nonmembers"], "redacted_identified_after": still, **extra}


def _before_and_after(applied: base.Applied, settings: AttackSettings, encoder: Encoder) -> tuple[AttackRun, AttackRun]:
    """A probe's attack before the defense, and after it at the before run's boundary."""
    before = run_attack(settings, encoder=encoder)
    boundary = before.result.rule.get("boundary")
    return before, applied.attack(settings.replace(decision_boundary=boundary) if boundary else settings, encoder)


def _probes(cfg: VerifyConfig, attack: AttackSettings, encoder: Encoder, applied: base.Applied, names: list[str],
            before: AttackRun, after: AttackRun, views: Path) -> dict:
    """The same attack with held-out phrasings, and with each name variant (every one, whether or not it was
    redacted), before and after the defense."""
    rows = [_probe_row(judge.PROBE_TEMPLATES, f"the attack's templates ({len(before.scan.templates)})", before,
                       after, names, templates=len(before.scan.templates))]
    heldout = heldout_templates_path()
    rows.append(_probe_row(judge.PROBE_HELDOUT, "held-out phrasings",
                           *_before_and_after(applied, attack.replace(prompts=heldout), encoder), names,
                           templates=len(read_prompts(heldout)), templates_sha256=sha256_file(heldout)))
    found = before.scan
    audit = {p.name: p.photos for p in found.audit if p.auditable}
    ref = {p.name: p.photos for p in found.reference if p.auditable}
    measured = [r.name for r in before.result.persons if r.name.casefold() in {n.casefold() for n in names}]
    for variant in cfg.probe_variants:
        view = variant_view(views / f"variant-{variant}", variant, audit, ref, found.labels, attack.n_candidates,
                            attack.seed, prefer=measured)
        v_settings = attack.replace(people=view.people, reference=view.reference, labels=view.labels,
                                    candidates=view.candidates, candidate_set="shared", attributes=None)
        full = {name_variant(n, variant): n for n in measured if n not in view.dropped}
        rows.append(_probe_row(judge.variant_probe(variant), f"name variant: {variant}",
                               *_before_and_after(applied, v_settings, encoder), list(full), full,
                               dropped_as_ambiguous=view.dropped))
    return {"rows": rows, "heldout_templates": list(read_prompts(heldout))}


def _relearning(cfg: VerifyConfig, attack: AttackSettings, encoder: Encoder, applied: base.Applied,
                names: list[str], sections: dict, retain: list[Path], before: AttackRun) -> dict:
    """Fine-tune the defended model on clean data at a few step counts; who comes back (judged at the before
    run's boundary)?"""
    towers = [s.name for s in (applied.stages or [applied])]
    after = {r["name"]: r["after"]["member"] for r in sections["redacted"]}
    boundary = before.result.rule.get("boundary")
    settings = attack.replace(decision_boundary=boundary) if boundary else attack
    rows = []
    for steps, model in relearn(applied.loaded, encoder.loaded, names, cfg.relearn_steps, towers=towers,
                                images=retain, seed=attack.seed, precision=encoder.precision):
        run = run_attack(settings, encoder=encoder.with_model(model))
        persons = {p.name: p for p in run.result.persons}
        back = sorted(n for n in after if not after[n] and persons[n].member)
        s = compare_rows(persons, names)
        rows.append({"steps": steps, "redacted_identified": s[0], "came_back": back, "others_identified": s[1],
                     "n_others": s[2], "identified": sorted(n for n in after if persons[n].member),
                     "checkpoint_sha256": model.checkpoint_sha256})
    return {"towers": towers, "data": "clean captions without the redacted names (text); the retained photos "
                                      "(image); towards the undefended model's embeddings",
            "lr": 1e-4, "n_redacted": len(after),
            "identified_after_defense": sum(after.values()), "rows": rows}


def compare_rows(persons: dict, names: Sequence[str]) -> tuple[int, int, int]:
    """(redacted identified, other labelled members (or everyone) identified, how many others)."""
    gone = {n.casefold() for n in names}
    labelled = any(p.label is not None for p in persons.values())
    others = [p for n, p in persons.items() if n.casefold() not in gone and (p.label if labelled else True)]
    return (sum(p.member for n, p in persons.items() if n.casefold() in gone), sum(p.member for p in others),
            len(others))


def write_verification(v: Verification, out: str | Path) -> Path:
    """The attacks, the defense and the sweep first, verification.json last: it never points at a missing file.
    A verification.json already there is withdrawn first, so it never sits beside another run's attacks."""
    out = Path(out)
    (out / "verification.json").unlink(missing_ok=True)
    outputs = {}
    runs = (("attack_before", v.before), ("attack_after", v.after), ("attack_after_recalibrated", v.recalibrated))
    for key, run in runs:
        if run is not None and v.record.get(key):
            path = write_attack(run, out / Path(v.record[key]).parent)
            outputs[v.record[key]] = {"sha256": sha256_file(path)}
    outputs.update(v.applied.save(out, v.record["manifest"]["command"]))
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
