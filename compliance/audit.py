"""One-command audits: a YAML config → attack → defenses (each verified) → reports. Resumable.

Every step writes its outputs atomically and then records, in `state.json`, a key made of everything it depends
on (its settings, a fingerprint of its input files, the hashes of upstream outputs). Run again, a step whose key
matches and whose outputs are on disk is skipped, so an interrupted audit resumes where it stopped and a changed
setting reruns exactly the steps it affects.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from attack.errors import InputError
from attack.io import atomic_write_json, canonical_json, sha256_file, sha256_text

from .config import AuditConfig, DefenseSpec, ReportSpec

STATE_FILE = "state.json"


def fingerprint(path: Path | None) -> str | None:
    """What an input is: a file's SHA-256; for a folder tree, its files' names, sizes and modification times
    (cheap for thousands of photos; the attack records every photo's SHA-256 itself)."""
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
            st = p.stat()
            rows.append(f"{p.relative_to(path)}:{st.st_size}:{st.st_mtime_ns}")
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
    """state.json: for each finished step, its key and its outputs."""

    def __init__(self, output: Path):
        self.path = output / STATE_FILE
        try:
            self.steps = json.loads(self.path.read_text(encoding="utf-8")).get("steps", {})
        except (FileNotFoundError, json.JSONDecodeError):
            self.steps = {}

    def done(self, name: str, key: str) -> bool:
        step = self.steps.get(name)
        return bool(step and step["key"] == key and all(Path(p).exists() for p in step["outputs"]))

    def finish(self, name: str, key: str, outputs: list[Path]) -> None:
        self.steps[name] = {"key": key, "outputs": [str(p) for p in outputs]}
        atomic_write_json(self.path, {"steps": self.steps})


def _model_fingerprint(settings) -> dict:
    from compliance.commands.common import resolve_model_arg
    model = resolve_model_arg(settings.model)
    return {"model": settings.model, "model_files": fingerprint(Path(model)) if Path(model).exists() else None,
            "checkpoint": fingerprint(Path(settings.checkpoint) if settings.checkpoint else None)}


def run_audit(cfg: AuditConfig, progress: bool = True, warn: Callable[[str], None] | None = None,
              command: str | None = None, say: Callable[[str], None] | None = None) -> AuditOutcome:
    """Run (or resume) the whole audit described by `cfg`."""
    from attack.run import run_attack, write_attack
    from compliance.commands.common import resolve_model_arg

    say = say or (lambda msg: None)
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    log = StepLog(out)
    a = cfg.attack
    settings = a.replace(model=resolve_model_arg(a.model), progress=progress, command=command,
                         extra_inputs={"audit_config_sha256": sha256_file(cfg.source)}).validate()
    # What the results depend on (the runtime settings too: precision and device change the numbers).
    base_key = {**_model_fingerprint(a), "people": fingerprint(a.people), "reference": fingerprint(a.reference),
                "labels": fingerprint(a.labels), "candidates": fingerprint(a.candidates),
                "prompts": fingerprint(a.prompts), "n_candidates": a.n_candidates, "candidate_set": a.candidate_set,
                "max_images": a.max_images, "seed": a.seed, "device": a.device, "precision": a.precision}

    # 1. The attack.
    attack_dir = out / "attack"
    attack_key = sha256_text(canonical_json({**base_key, "tau": a.tau, "target_fpr": a.target_fpr}))
    outcome = AuditOutcome(output=out, attack=attack_dir / "results.json")
    if log.done("attack", attack_key):
        outcome.resumed.append("attack")
        say(f"attack: already done ({outcome.attack})")
    else:
        say("attack: running")
        run = run_attack(settings, warn=warn)
        write_attack(run, attack_dir)
        log.finish("attack", attack_key, [outcome.attack, attack_dir / "scores.csv"])
    attack_sha = sha256_file(outcome.attack)

    # 2. Each defense, verified by attacking again.
    for i, spec in enumerate(cfg.defenses):
        name = f"defense-{i}-{spec.kind}"
        folder = out / name
        key = sha256_text(canonical_json({**base_key, "attack": attack_sha, "defense": _defense_key(spec),
                                          "utility": fingerprint(cfg.utility)}))
        target = folder / "verification.json"
        if log.done(name, key):
            outcome.resumed.append(name)
            say(f"{name}: already done ({target})")
        else:
            say(f"{name}: running")
            _run_defense(cfg, spec, settings, folder, warn)
            log.finish(name, key, [target])
        outcome.verifications.append(target)

    # 3. Reports, each a pure rendering of a JSON record already on disk.
    from compliance.report import write_report
    for spec in cfg.reports:
        record = outcome.verifications[spec.defense] if spec.kind == "mitigation" else outcome.attack
        stem = spec.kind + (f"-{_safe_stem(spec.person)}" if spec.person else "") + \
            (f"-defense-{spec.defense}" if spec.kind == "mitigation" else "")
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


def _defense_key(spec: DefenseSpec) -> dict:
    """The spec, with every file it names (the names, and any path option) replaced by its fingerprint."""
    from defense.base import all_options
    d = asdict(spec)
    d["names"] = fingerprint(d["names"])
    paths = {k for k, opt in all_options().items() if opt.kind == "path"}
    d["options"] = {k: (fingerprint(v) if k in paths and v else v) for k, v in d["options"].items()}
    return d


def _safe_stem(name: str) -> str:
    """A file-name-safe form of a person's name (the report's content keeps the real name)."""
    keep = "".join(c if c.isalnum() else "-" for c in name)[:60].strip("-")
    return keep or sha256_text(name)[:12]


def _run_defense(cfg: AuditConfig, spec: DefenseSpec, settings, folder: Path, warn) -> Path:
    from defense.verify import VerifyConfig, run_verification
    known = set(VerifyConfig.__dataclass_fields__)
    vcfg = VerifyConfig(attack=settings, names=spec.names, defense=spec.kind, kind=spec.method, tower=spec.tower,
                        utility=cfg.utility, out=folder,
                        **{k: v for k, v in spec.options.items() if k in known and v is not None})
    return run_verification(vcfg, warn=warn)


DEMO_REDACT = 5


def write_demo_config(out: Path) -> Path:
    """Photos of the synthetic world, a list of members to redact, and the YAML that audits it all."""
    from world import load_world, read_world_record, write_photos
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
