"""Helpers the tests share: photos and people folders drawn from noise, the command line in a subprocess and its
one-line errors, PDF text, and members of the synthetic world to redact."""

import json
import os
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image

from idia.attack.settings import AttackSettings
from idia.defense.record import group_summary
from idia.defense.redact import pick_to_redact
from idia.world import load_world

N_REDACT = 10


def photo(path: Path, seed: int = 0, size=(40, 32), fmt=None, **save) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path, format=fmt, **save)
    return path


def run_idia(*args, cwd=None):
    """`idia ARGS` in this process (torch is imported once per session, not once per command)."""
    from click.testing import CliRunner

    from idia.compliance.cli import main
    old = os.getcwd()
    os.chdir(cwd or old)
    try:
        r = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    finally:
        os.chdir(old)
    return SimpleNamespace(returncode=r.exit_code, stderr=r.stderr, stdout=r.stdout)


def assert_one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("idia: error: "), proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def pdf_file_text(path: Path) -> str:
    from pypdf import PdfReader
    return " ".join(page.extract_text() for page in PdfReader(str(path)).pages)


def noise_people(root, n_people=6, n_photos=3, seed=0, names=None):
    """Photos of noise (the encoder and the rule do not care what a photo shows), one folder per person."""
    rng = np.random.default_rng(seed)
    names = names or [f"Person{chr(65 + i)} Example{chr(65 + i)}" for i in range(n_people)]
    for name in names:
        (root / name).mkdir(parents=True)
        for j in range(n_photos):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(root / name / f"{j}.png")
    return root


def pick_members(paper_run, world_model_dir) -> list[str]:
    """Ten members the attack identifies before any defense. Those with an identified member who shares their
    first or last name come first (so neighbours are measured), then the rest by name; never both of a pair."""
    world = load_world(world_model_dir)
    members = {p.name for p in world.members}
    identified = sorted(p.name for p in paper_run.result.persons if p.member and p.name in members)
    return pick_to_redact(identified, members, N_REDACT)


def pdf_text(pdf: bytes, tmp_path) -> str:
    path = tmp_path / "text.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], check=True, capture_output=True,
                          text=True).stdout


def squeeze(text: str) -> str:
    """Text without whitespace: hashes and long names wrap across lines in a PDF."""
    return re.sub(r"\s+", "", text)


def _summary(p: dict) -> dict:
    return {k: p[k] for k in ("score", "member", "p_value", "mean_log_prob")}


def make_verification(attack: dict, n_redacted: int = 3, losses: bool = True, sweep: bool = True) -> dict:
    """A realistic `idia verify` record built from one attack: the first identified members are redacted (after:
    no longer identified), namesakes and everyone else barely move."""
    persons = attack["persons"]

    def namesakes(p):
        first, last = p["name"].split()[0], p["name"].split()[-1]
        return sum(q is not p and (q["name"].split()[0] == first or q["name"].split()[-1] == last) for q in persons)

    members = [p for p in persons if p["member"]]
    redact = sorted(members, key=lambda p: -min(namesakes(p), 1))[:n_redacted]  # prefer people with namesakes
    names = {p["name"] for p in redact}
    firsts = {p["name"].split()[0]: p["name"] for p in redact}
    lasts = {p["name"].split()[-1]: p["name"] for p in redact}
    forgotten = {"score": 0, "member": False, "p_value": 0.61, "mean_log_prob": -19.25}

    def nudged(p):
        s = _summary(p)
        return {**s, "mean_log_prob": s["mean_log_prob"] - 0.4}

    redacted = [{"name": p["name"], "before": _summary(p), "after": forgotten} for p in redact]
    neighbours, collateral = [], []
    for p in persons:
        if p["name"] in names:
            continue
        first, last = p["name"].split()[0], p["name"].split()[-1]
        if first in firsts or last in lasts:
            shares = "first" if first in firsts else "last"
            neighbours.append({"name": p["name"], "shares": shares,
                               "with": firsts[first] if shares == "first" else lasts[last],
                               "before": _summary(p), "after": nudged(p)})
        else:
            collateral.append({"name": p["name"], "before": _summary(p), "after": nudged(p)})
    manifest = {**attack["manifest"], "command": "idia verify --model world --forget forget.txt --out verify",
                "inputs": {"checkpoint": attack["manifest"]["inputs"]["checkpoint"],
                           "forget": {"file": "forget.txt", "sha256": "ab" * 32},
                           "images": attack["manifest"]["inputs"]["images"]}}
    return {
        "kind": "idia-verification", "schema_version": 1, "manifest": manifest,
        "defense": {"kind": "redact",
                    "settings": {"steps": 40, "lr": 1e-4, "weights": {"utility": 1.0, "drift": 0.1},
                                 "target": "text tower"},
                    "record": {"losses": [{"step": i, "total": 3.0 / (i + 1) + 0.2, "redaction": 2.5 / (i + 1),
                                           "utility": 0.15 + 0.01 * (i % 3), "drift": 0.002 * i}
                                          for i in range(40)] if losses else [],
                               "checkpoint_sha256_before": attack["model"]["checkpoint_sha256"],
                               "checkpoint_sha256_after": "cd" * 32 if losses else None, "seconds": 12.5}},
        "redacted": redacted, "neighbours": neighbours, "collateral": collateral,
        "summary": {"redacted": group_summary(redacted), "neighbours": group_summary(neighbours),
                    "collateral": group_summary(collateral),
                    "utility": {"task": "shapes", "n_images": 120, "n_classes": 12, "top1_before": 0.925,
                                "top1_after": 0.9}},
        "sweep": {"kind": "noise scale", "rows": [
            {"strength": s, "redacted_rate": max(0.0, 1 - 2 * s), "others_rate": max(0.0, 0.5 - 0.4 * s),
             "utility_top1": 0.93 - 0.2 * s} for s in (0.0, 0.1, 0.25, 0.5, 1.0)]} if sweep else None,
        "attack_before": "before/results.json", "attack_after": "after/results.json",
    }


def write_verification_folder(folder: Path, before: dict, after: dict, n_redacted: int = 3,
                              recalibrated: dict | None = None) -> Path:
    """A verification as `idia verify` leaves it, from two attack records: before/ and after/results.json, and a
    verification.json whose sections `defense.verify.compare` draws from them and whose manifest records their
    SHA-256 (everything else as `make_verification` makes it); with `recalibrated`, the after model judged at its
    own boundary too (after-recalibrated/results.json, each row's after_recalibrated). Returns the path of
    verification.json."""
    import hashlib
    import json

    from idia.attack.record.results import AttackResult
    from idia.defense.verify import compare
    record = make_verification(before, n_redacted=n_redacted)
    names = [r["name"] for r in record["redacted"]]
    runs = [SimpleNamespace(result=AttackResult.from_dict(d)) if d is not None else None
            for d in (before, after, recalibrated)]
    sections = compare(*runs[:2], names, runs[2])
    record.update({k: sections[k] for k in ("redacted", "neighbours", "collateral", "nonmembers")})
    record["schema_version"] = 3
    record["summary"] = {**sections["summary"], "utility": record["summary"]["utility"]}
    record["manifest"]["inputs"]["names"] = {"file": "forget.txt", "sha256": "ab" * 32, "names": names}
    outputs = {}
    linked = [("before/results.json", before), ("after/results.json", after)]
    if recalibrated is not None:
        record["attack_after_recalibrated"] = "after-recalibrated/results.json"
        linked.append(("after-recalibrated/results.json", recalibrated))
    for rel, data in linked:
        raw = (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(raw)
        outputs[rel] = {"sha256": hashlib.sha256(raw).hexdigest()}
    record["manifest"]["outputs"] = outputs
    path = folder / "verification.json"
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def world_attack(world_model_dir, world_photos) -> "AttackSettings":
    """The settings of an attack on the session's world photos, labels given."""
    return AttackSettings(model=str(world_model_dir), people=world_photos / "people",
                        labels=world_photos / "labels.json", progress=False, command="pytest")


def world_subset(world_photos: Path, dest: Path, n_people: int, n_reference: int = 0, include=()) -> Path:
    """A smaller audit of the session's world photos: the people named in `include`, then the first others in
    name order up to `n_people` (members and non-members mix in name order), and `n_reference` reference
    people; linked, not copied, with their labels. For tests whose claim does not need all 300 people."""
    for sub, n in (("people", n_people), ("reference", n_reference)):
        if n:
            (dest / sub).mkdir(parents=True)
            folders = sorted((world_photos / sub).iterdir(), key=lambda f: (f.name not in set(include), f.name))
            for folder in folders[:n]:
                (dest / sub / folder.name).symlink_to(folder, target_is_directory=True)
    labels = json.loads((world_photos / "labels.json").read_text(encoding="utf-8"))
    kept = {p.name for p in (dest / "people").iterdir()}
    (dest / "labels.json").write_text(json.dumps({k: v for k, v in labels.items() if k in kept}), encoding="utf-8")
    return dest


# Names a report must print as text and never act on: markup, local URLs, bidi overrides, long and RTL names.
HOSTILE = {
    "html": '<img src="file:///etc/passwd">',
    "script": "<script>alert(1)</script> Smith",
    "url": "file:///etc/passwd",
    "long": ("Wolfeschlegelsteinhausenbergerdorff" * 15)[:500],
    "rlo": "\u202eevil Doe",
    "arabic": "محمد الأحمد",
    "hebrew": "דוד כהן",
}


def keep_people(data: dict, persons: list[dict]) -> dict:
    """A record cut to `persons`, holding together as every reader checks: the metrics (of the full set) dropped,
    labels cleared, and the q-values re-derived by BH over the people kept."""
    from idia.attack.decide.fdr import q_values
    data["persons"] = persons
    data["metrics"] = None
    for p, q in zip(persons, q_values([p["p_value"] for p in persons])):
        p["q_value"] = float(q)
        p["label"] = None
    return data
