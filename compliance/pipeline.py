"""One-command audits: a YAML config → attack → defenses (each verified) → reports. Resumable.

Every step writes its outputs atomically and then records, in `state.json`, a key made of everything it depends
on (its settings, a fingerprint of its input files, the hashes of upstream outputs) and the SHA-256 of each
output. Run again, a step whose key matches and whose outputs are on disk with those hashes is skipped, so an
interrupted audit resumes where it stopped, a changed setting reruns exactly the steps it affects, and a damaged
output is made again. Outputs are recorded relative to the output folder and inputs are resolved against the
config file's folder, so the same audit resumes from any working directory. The output folder is locked for
the whole run: a second run into it stops with one line.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from idia.compliance.config import AuditConfig, DefenseSpec
from idia.io import atomic_write_json, canonical_json, output_lock, sha256_file, sha256_text

STATE_FILE = "state.json"


def fingerprint(path: Path | None) -> str | None:
    """What an input is: a file's SHA-256; for a folder tree, its files' names and SHA-256s. Content, not size
    and modification time: a photo swapped for another of the same size and time is a changed input."""
    if path is None:
        return None
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    if not path.exists():
        return "missing"
    rows = []
    for p in sorted(path.rglob("*")):
        if p.is_file():
            rows.append(f"{p.relative_to(path)}:{sha256_file(p)}")
    return sha256_text("\n".join(rows))


@dataclass
class AuditOutcome:
    output: Path
    attack: Path
    verifications: list[Path] = field(default_factory=list)
    reports: list[Path] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)  # steps skipped because they were already done

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else [str(x) for x in v] if isinstance(v, list) and k != "resumed"
                    else v) for k, v in asdict(self).items()}


class StepLog:
    """state.json: for each finished step, its key and its outputs (path relative to the output folder, SHA-256)."""

    def __init__(self, output: Path):
        self.output = output
        self.path = output / STATE_FILE
        try:
            steps = json.loads(self.path.read_text(encoding="utf-8")).get("steps", {})
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            steps = {}
        self.steps = steps if isinstance(steps, dict) else {}

    def done(self, name: str, key: str) -> bool:
        """The step ran with this key and every output is still the file it wrote (same SHA-256)."""
        step = self.steps.get(name)
        if not isinstance(step, dict) or step.get("key") != key or not isinstance(step.get("outputs"), dict):
            return False
        for rel, digest in step["outputs"].items():
            path = self.output / rel
            if not path.is_file() or sha256_file(path) != digest:
                return False
        return True

    def finish(self, name: str, key: str, outputs: list[Path]) -> None:
        self.steps[name] = {"key": key, "outputs": {_relative(p, self.output): sha256_file(p) for p in outputs}}
        atomic_write_json(self.path, {"steps": self.steps})


def _relative(path: Path, root: Path) -> str:
    return Path(path).relative_to(root).as_posix()


def _model_fingerprint(settings) -> dict:
    from idia.compliance.commands.common import resolve_model_arg
    model = resolve_model_arg(settings.model)
    return {"model": settings.model, "model_files": fingerprint(Path(model)) if Path(model).exists() else None,
            "checkpoint": fingerprint(Path(settings.checkpoint) if settings.checkpoint else None)}


def run_audit(cfg: AuditConfig, progress: bool = True, warn: Callable[[str], None] | None = None,
              command: str | None = None, say: Callable[[str], None] | None = None) -> AuditOutcome:
    """Run (or resume) the whole audit described by `cfg`, holding the output folder's lock."""
    say = say or (lambda msg: None)
    out = Path(cfg.output).absolute()
    out.mkdir(parents=True, exist_ok=True)
    with output_lock(out):
        return _run_audit_locked(cfg, out, progress, warn, command, say)


def _run_audit_locked(cfg: AuditConfig, out: Path, progress: bool, warn, command, say) -> AuditOutcome:
    from idia.attack.run import run_attack, write_attack
    from idia.compliance.commands.common import resolve_model_arg

    log = StepLog(out)
    a = cfg.attack
    settings = a.replace(model=resolve_model_arg(a.model), progress=progress, command=command,
                         extra_inputs={"audit_config_sha256": sha256_file(cfg.source)}).validate()
    settings.check_output(out, "output:")
    _check_report_people(cfg, a.people)  # a takedown of someone not audited fails now, not after the attack
    # What the results depend on (the runtime settings too: precision and device change the numbers).
    base_key = {**_model_fingerprint(a), "people": fingerprint(a.people), "reference": fingerprint(a.reference),
                "labels": fingerprint(a.labels), "candidates": fingerprint(a.candidates),
                "prompts": fingerprint(a.prompts), "n_candidates": a.n_candidates, "candidate_set": a.candidate_set,
                "max_images": a.max_images, "seed": a.seed, "device": a.device, "precision": a.precision, "fast_decode": a.fast_decode,
                "distractors": fingerprint(a.distractors), "distractor_draw": a.distractor_draw,
                "attributes": fingerprint(a.attributes), "aliases": fingerprint(a.aliases)}

    # 1. The attack.
    attack_dir = out / "attack"
    attack_key = sha256_text(canonical_json({**base_key, "rule": a.rule, "alpha": a.alpha, "tau": a.tau,
                                             "target_fpr": a.target_fpr}))
    outcome = AuditOutcome(output=out, attack=attack_dir / "results.json")
    if log.done("attack", attack_key) and _holds_together(outcome.attack, say):
        outcome.resumed.append("attack")
        say(f"attack: already done ({outcome.attack})")
    else:
        say("attack: running")
        run = run_attack(settings, warn=warn)
        write_attack(run, attack_dir)
        table = attack_dir / next(iter(run.result.manifest["outputs"]))  # scores.csv, or .csv.gz when large
        log.finish("attack", attack_key, [outcome.attack, table])
    attack_sha = sha256_file(outcome.attack)

    # 2. Each defense, verified by attacking again.
    for i, spec in enumerate(cfg.defenses):
        name = f"defense-{i}-{spec.kind}"
        folder = out / name
        key = sha256_text(canonical_json({**base_key, "attack": attack_sha, "defense": _defense_key(spec),
                                          "utility": fingerprint(cfg.utility)}))
        target = folder / "verification.json"
        if log.done(name, key) and _holds_together(target, say):
            outcome.resumed.append(name)
            say(f"{name}: already done ({target})")
        else:
            say(f"{name}: running")
            _run_defense(cfg, spec, settings, folder, warn)
            log.finish(name, key, [target])
        outcome.verifications.append(target)

    # 3. Reports, each a pure rendering of a JSON record already on disk.
    from idia.compliance.report import REPORT_KINDS, write_report
    from idia.compliance.report.schema import VERIFICATION_RECORD
    used: set[str] = set()
    for spec in cfg.reports:
        of_defense = REPORT_KINDS.get(spec.kind).reads is VERIFICATION_RECORD  # a defense's verification.json
        record = outcome.verifications[spec.defense] if of_defense else outcome.attack
        stem = _unique(spec.kind + (f"-{_safe_stem(spec.person)}" if spec.person else "") +
                       (f"-defense-{spec.defense}" if of_defense else ""), used)
        pdf = out / "reports" / f"{stem}.pdf"
        html = out / "reports" / f"{stem}.html"
        key = sha256_text(canonical_json({"record": sha256_file(record), "spec": asdict(spec)}))
        name = f"report-{stem}"
        if log.done(name, key):
            outcome.resumed.append(name)
        else:
            write_report(record, spec.kind, pdf, person=spec.person, include_photos=spec.include_photos, html_out=html)
            log.finish(name, key, [pdf, html])
        outcome.reports.append(pdf)
    atomic_write_json(out / "audit.json", outcome.to_dict())
    return outcome


def _holds_together(record: Path, say: Callable[[str], None]) -> bool:
    """A finished step's record, checked like any reader checks it before it is trusted on resume; one that
    does not hold together (edited since) is made again."""
    from idia.compliance.report.schema import ATTACK_RECORD, VERIFICATION_RECORD, check_record, load_record
    from idia.errors import InputError
    try:
        data, _ = load_record(record)
        reads = ATTACK_RECORD if data.get("kind") == ATTACK_RECORD.kind else VERIFICATION_RECORD
        check_record(data, reads, "resumed", record.parent)
    except InputError as e:
        say(f"{record}: {e}; running the step again")
        return False
    return True


def _check_report_people(cfg: AuditConfig, people: Path) -> None:
    """Every person a report is about is among the people folders, checked before anything runs."""
    from idia.attack.inputs.people import folder_names
    from idia.errors import InputError
    from idia.names import name_key
    known = {name_key(n) for n in folder_names(people)}
    for spec in cfg.reports:
        if spec.person and name_key(spec.person) not in known:
            raise InputError(f"{cfg.source}: the {spec.kind} report is about {spec.person!r}, who has no folder "
                             f"in {people}; nothing was run")


def _defense_key(spec: DefenseSpec) -> dict:
    """The spec, with every file it names (the names, and any path option) replaced by its fingerprint."""
    from idia.defense.base import all_options
    d = asdict(spec)
    d["names"] = fingerprint(d["names"])
    paths = {k for k, opt in all_options().items() if opt.kind == "path"}
    d["options"] = {k: (fingerprint(v) if k in paths and v else v) for k, v in d["options"].items()}
    return d


def _safe_stem(name: str) -> str:
    """A file-name-safe form of a person's name plus a short hash of the normalised name: readable, the same on
    every run, and different for "Anne-Marie Roux" and "Anne Marie Roux" (whose readable parts are equal).
    The report's content keeps the real name."""
    from idia.names import normalize_name
    name = normalize_name(name)
    keep = "-".join("".join(c if c.isalnum() else " " for c in name).split())[:60].strip("-")
    digest = sha256_text(name)[:10]
    return f"{keep}-{digest}" if keep else digest


def _unique(stem: str, used: set[str]) -> str:
    """`stem`, or `stem-2`, `stem-3`, ... if an earlier report of this audit already took it (two report entries
    for one person): a report never overwrites another."""
    candidate, n = stem, 1
    while candidate.casefold() in used:
        n += 1
        candidate = f"{stem}-{n}"
    used.add(candidate.casefold())
    return candidate


def _run_defense(cfg: AuditConfig, spec: DefenseSpec, settings, folder: Path, warn) -> Path:
    from idia.defense.verify import VerifyConfig, run_verification
    known = set(VerifyConfig.__dataclass_fields__)
    vcfg = VerifyConfig(attack=settings, names=spec.names, defense=spec.kind, kind=spec.method, tower=spec.tower,
                        utility=cfg.utility, out=folder,
                        **{k: v for k, v in spec.options.items() if k in known and v is not None})
    return run_verification(vcfg, warn=warn)


DEMO_REDACT = 5


def write_demo_config(out: Path) -> Path:
    """Photos of the synthetic world, a list of members to redact, and the YAML that audits it all."""
    from idia.world import load_world, read_world_record, write_photos
    photos = out / "photos"
    if not (photos / "labels.json").is_file():  # written last: its presence means the photos are complete
        write_photos(load_world(), photos, images_per_person=10, shapes_per_class=10)
    record = read_world_record()
    counts = record["train_images_per_member"]
    audited = {n for n, role in record["membership"].items() if role != "reference"}
    pairs = [(a, b) for a, b in record.get("confusable_names", {}).items() if a in audited and b in audited]
    # One member who shares a first or last name with another audited person, so the verification shows what
    # happens to namesakes; the rest are the members seen most often in training, in no confusable pair.
    with_namesake = sorted((n for pair in pairs for n in pair if n in counts), key=lambda n: (-counts[n], n))[:1]
    confusable = {n for pair in record.get("confusable_names", {}).items() for n in pair}
    most = max(counts.values())
    chosen = with_namesake + sorted(n for n, c in counts.items() if c == most and n not in confusable)
    chosen = chosen[:DEMO_REDACT]
    _write_if_changed(out / "redact.txt", "\n".join(chosen) + "\n")
    config = out / "demo.yaml"
    _write_if_changed(config, (
        "# The demo audit of the synthetic world (written by `idia demo`; rerun with `idia audit` on this file).\n"
        "model: world\n"
        "people: photos/people\n"
        "reference: photos/reference\n"
        "labels: photos/labels.json\n"
        "utility: photos/shapes\n"
        "seed: 0\n"
        "attack:\n"
        "  target_fpr: 0.05\n"
        "defenses:\n"
        "  - kind: redact\n"
        "    names: redact.txt\n"
        "    steps: 300\n"
        "reports:\n"
        "  - kind: audit\n"
        f"  - kind: takedown\n    person: {json.dumps(chosen[-1])}\n"
        "  - kind: mitigation\n"
        "output: audit\n"))
    return config


def _write_if_changed(path: Path, text: str) -> None:
    """Leave an unchanged file alone, so a rerun of the demo resumes instead of starting over."""
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
