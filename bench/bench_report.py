"""Do reports scale? Time and peak memory of an audit report and a takedown report at 10^3 .. 10^5 people.

The records are synthesised from one small real attack on the shipped world (one photo a person, calibrated on
reference people), so every field has the schema `idia attack` writes: each audited person is a copy of a real
one under a new unique name, with fresh photo hashes and perturbed scores (verdicts re-decided by the record's
own threshold). Each report is rendered in a fresh subprocess, so its peak memory (VmHWM) is its own.

Printed per size: seconds, seconds per person relative to the smallest size in this run (goal: within 1.3x at
the largest), the marginal cost per extra person, peak memory, pages and PDF size.

    .venv/bin/python bench/bench_report.py [--sizes 1000,10000,50000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def base_record(work: Path, n_people: int = 16, n_reference: int = 40) -> dict:
    """One small real attack on the world: members and non-members, one fresh photo each."""
    from idia.attack.run import run_attack
    from idia.attack.settings import AttackSettings
    from idia.world import load_world, shipped_model_dir, write_photos
    from idia.world.world import ROLE_MEMBER, ROLE_NONMEMBER, ROLE_REFERENCE, World

    world = load_world()
    keep = (world.by_role(ROLE_MEMBER)[:n_people // 2] + world.by_role(ROLE_NONMEMBER)[:n_people - n_people // 2]
            + world.by_role(ROLE_REFERENCE)[:n_reference])
    write_photos(World(spec=world.spec, identities=keep), work, images_per_person=1, shapes_per_class=1)
    cfg = AttackSettings(model=str(shipped_model_dir()), people=work / "people", reference=work / "reference",
                       target_fpr=0.05, labels=work / "labels.json", progress=False,
                       command="bench/bench_report.py", cache_dir=work / "cache")
    return run_attack(cfg).result.to_dict()


def synthesise(base: dict, n: int, seed: int = 0) -> dict:
    """A record of `n` audited people built from `base`'s: same schema, unique names, perturbed numbers."""
    rng = random.Random(seed)
    out = {k: v for k, v in base.items() if k not in ("persons", "manifest")}
    out["manifest"] = {k: v for k, v in base["manifest"].items() if k != "inputs"}
    inputs = {k: v for k, v in base["manifest"]["inputs"].items() if k != "images"}
    cal = base.get("calibration")
    threshold = cal["threshold"] if cal and base["rule"]["decided_by"] == "calibrated-continuous" else None
    null = sorted(cal["null_scores"]) if cal else []
    persons, images = [], []
    bases = base["persons"]
    for i in range(n):
        src = bases[i % len(bases)]
        p = copy.deepcopy(src)
        old, name = src["name"], f"{src['name'].split()[0]} Synth{i:06d}"
        p["name"] = name
        for v in p["votes"]:
            if v["vote"] == old:
                v["vote"] = name
        p["mean_log_prob"] = round(src["mean_log_prob"] + rng.gauss(0.0, 0.5), 6)
        if threshold is not None:
            p["member"] = p["mean_log_prob"] > threshold
            above = sum(1 for s in null if s >= p["mean_log_prob"])
            p["p_value"] = (1 + above) / (1 + len(null))
        for k, im in enumerate(p["images"]):
            im["file"] = f"people/{name}/{k:03d}.png"
            im["sha256"] = hashlib.sha256(f"{seed}/{i}/{k}".encode()).hexdigest()
            for row in im["top"]:
                if row[0] == old:
                    row[0] = name
            images.append({"person": name, "file": im["file"], "sha256": im["sha256"]})
        persons.append(p)
    for r in base.get("reference", []):
        images += [im for im in base["manifest"]["inputs"]["images"] if im["person"] == r["name"]]
    inputs["images"] = images
    out["manifest"]["inputs"] = inputs
    out["persons"] = persons
    return out


def _peak_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent
    across fork and exec, so a child's would report the parent's synthesised records."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _one(path: str, kind: str, person: str | None) -> None:
    """Child process: render one report, print seconds and peak memory as JSON."""
    import weasyprint  # noqa: F401  (imported before timing: a one-off cost, not a per-person one)
    from pypdf import PdfReader

    from idia.compliance.report import write_report
    before = _peak_mb()
    out = Path(path).with_name(f"{kind}.pdf")
    t = time.perf_counter()
    write_report(path, kind, out, person=person)
    seconds = time.perf_counter() - t
    print(json.dumps({"seconds": seconds, "peak_mb": _peak_mb(), "before_mb": before,
                      "pages": len(PdfReader(out).pages), "pdf_mb": out.stat().st_size / 2**20}))


def _child(path: Path, kind: str, person: str | None = None) -> dict:
    cmd = [sys.executable, __file__, "--one", str(path), "--kind", kind] + (["--person", person] if person else [])
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE)
    if done.returncode:
        raise SystemExit(f"{kind} report of {path} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,50000")
    ap.add_argument("--keep", type=Path, default=None, help="keep the records and PDFs in this folder")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--kind", default="audit", help=argparse.SUPPRESS)
    ap.add_argument("--person", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        return _one(args.one, args.kind, args.person)
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        base = base_record(Path(tmp) / "world")
        print(f"base attack: {len(base['persons'])} people, {len(base['reference'])} reference, "
              f"{time.perf_counter() - t:.1f} s", flush=True)
        rows = []
        for n in sizes:
            folder = root / f"n{n}"
            folder.mkdir(exist_ok=True)
            path = folder / "results.json"
            record = synthesise(base, n)
            path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            person = record["persons"][n // 2]["name"]
            del record
            audit, takedown = _child(path, "audit"), _child(path, "takedown", person)
            rows.append((n, path.stat().st_size / 2**20, audit, takedown))
            print(f"n={n}: audit {audit['seconds']:.1f} s, takedown {takedown['seconds']:.1f} s", flush=True)
    n0, _, a0, k0 = rows[0]
    print(f"\n{'people':>7} {'json MB':>8} | {'audit s':>8} {'s/person x':>10} {'marginal ms':>11} {'peak MB':>8}"
          f" {'pages':>5} {'pdf MB':>7} | {'takedown s':>10} {'s/person x':>10} {'peak MB':>8}")
    previous = None
    for n, mb, a, k in rows:
        marginal = ((a["seconds"] - previous[1]) / (n - previous[0]) * 1e3) if previous else float("nan")
        previous = (n, a["seconds"])
        print(f"{n:>7} {mb:>8.1f} | {a['seconds']:>8.2f} {a['seconds'] / n / (a0['seconds'] / n0):>10.2f}"
              f" {marginal:>11.3f} {a['peak_mb']:>8.0f} {a['pages']:>5} {a['pdf_mb']:>7.1f} |"
              f" {k['seconds']:>10.2f} {k['seconds'] / n / (k0['seconds'] / n0):>10.2f} {k['peak_mb']:>8.0f}")
    print("s/person x: seconds per person relative to the smallest size; marginal: ms per extra person since the "
          "previous size; peak: the rendering process's peak RSS (VmHWM). Note: up to the audit's PAGE_PHOTOS photos, "
          "the pages also list every photo hash (about 30 pages at 10^3 people with one photo each).")


if __name__ == "__main__":
    main()
