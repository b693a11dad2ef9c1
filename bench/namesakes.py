"""Validity for real names, and what the false-discovery rate costs, measured on the synthetic world (issue 18).

Two audits, each through `run_attack` as a user runs it, with the shipped world model:

  world      the world's 100 members and 100 non-members (10 photos each; --reference adds its 100 reference
             people): every rule's true-positive rate at alpha = 0.01
  namesakes  the 200 world people beside N strangers (`world.namesakes`: never in training, 1-3 photos, first and
             last names taken from members'): the strangers' flagged share by the old test (the name side alone,
             --rule permutation) and the default rule (name-and-face), per person at alpha 0.01 and 0.05; and the
             default audit (BH at --fdr 0.05): flagged, false discoveries, power

    .venv/bin/python bench/namesakes.py [--strangers 9800] [--out bench/out/namesakes]

Everything is written under --out (photos, caches, each run's results.json) and the figures to namesakes.json;
a second run reuses the photos and the caches.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def prepare(out: Path, n_strangers: int) -> dict[str, Path]:
    from idia.world import load_world, write_photos
    from idia.world.namesakes import SHARING, make_strangers, write_strangers
    world_dir, audit = out / "world", out / f"namesakes-{n_strangers}"
    world = load_world()
    if not (world_dir / "labels.json").exists():
        write_photos(world, world_dir, images_per_person=10, shapes_per_class=1)
    if not (audit / "labels.json").exists():
        t = time.perf_counter()
        strangers = make_strangers(world, n_strangers, strata=SHARING, seed=2)
        write_strangers(world, strangers, audit / "people")
        for folder in (world_dir / "people").iterdir():
            target = audit / "people" / folder.name
            if not target.exists():
                target.symlink_to(folder.resolve(), target_is_directory=True)
        labels = {**json.loads((world_dir / "labels.json").read_text()), **{s.name: False for s in strangers}}
        (audit / "labels.json").write_text(json.dumps(labels))
        (audit / "strata.json").write_text(json.dumps({s.name: s.stratum for s in strangers}))
        print(f"{n_strangers} strangers written in {time.perf_counter() - t:.0f} s", flush=True)
    return {"world": world_dir, "namesakes": audit}


def attack(people: Path, labels: Path, cache: Path, out: Path, **settings) -> dict:
    from idia.attack.run import run_attack, write_attack
    from idia.attack.settings import AttackSettings
    from idia.world import shipped_model_dir
    t = time.perf_counter()
    run = run_attack(AttackSettings(model=str(shipped_model_dir()), people=people, labels=labels, cache_dir=cache,
                                    progress=False, **settings))
    write_attack(run, out)
    print(f"  {out.name}: {time.perf_counter() - t:.0f} s ({json.dumps(run.timings)})", flush=True)
    return json.loads((out / "results.json").read_text())


def tpr(record: dict) -> float:
    members = [p for p in record["persons"] if p["label"]]
    return sum(p["member"] for p in members) / len(members)


def world_rules(dirs: dict, out: Path) -> dict:
    w = dirs["world"]
    base = dict(people=w / "people", labels=w / "labels.json", cache=out / "cache")
    runs = {"paper (tau 1)": dict(rule="paper"), "permutation (alpha 0.01)": dict(rule="permutation", alpha=0.01),
            "name-and-face (alpha 0.01)": dict(alpha=0.01),
            "name-and-face + reference (alpha 0.01)": dict(alpha=0.01, reference=w / "reference"),
            "calibrated (target FPR 0.01)": dict(reference=w / "reference", target_fpr=0.01),
            "name-and-face (default: BH q 0.05)": {}}
    rows = {}
    for label, extra in runs.items():
        rec = attack(out=out / "runs" / ("world-" + label.split(" (")[0].replace(" + ", "-")
                                         + ("-bh" if not extra else "")), **base, **extra)
        m = rec["metrics"]
        rows[label] = {"tpr": tpr(rec), "fpr": m["fpr"], "flagged": sum(p["member"] for p in rec["persons"])}
        print(f"  world {label}: TPR {rows[label]['tpr']:.2f} FPR {m['fpr']:.3f}", flush=True)
    return rows


def namesake_runs(dirs: dict, out: Path) -> dict:
    a = dirs["namesakes"]
    strata = json.loads((a / "strata.json").read_text())
    base = dict(people=a / "people", labels=a / "labels.json", cache=out / "cache")
    rows = {}
    for label, extra in {"old: permutation, alpha 0.01": dict(rule="permutation", alpha=0.01),
                         "new: name-and-face, alpha 0.01": dict(alpha=0.01),
                         "default: name-and-face, BH q 0.05": {}}.items():
        rec = attack(out=out / "runs" / f"{a.name}-{label.split(':')[0]}", **base, **extra)
        people = rec["persons"]
        strangers = [p for p in people if p["name"] in strata]
        members = [p for p in people if p["label"]]
        row = {"flagged": sum(p["member"] for p in people),
               "false": sum(p["member"] and not p["label"] for p in people),
               "members_flagged": sum(p["member"] for p in members), "members": len(members),
               "strangers": len(strangers), "fdr": rec.get("fdr"), "smallest_p": rec["rule"]["sequential"]["smallest_p"]}
        for level in (0.01, 0.05):
            p_old = [p["evidence"]["permutation"]["p_value"] for p in strangers]
            row[f"strangers_name_side_at_{level}"] = float(np.mean(np.array(p_old) <= level))
            row[f"strangers_rule_at_{level}"] = float(np.mean(np.array([p["p_value"] for p in strangers]) <= level))
        row["fdp"] = row["false"] / max(row["flagged"], 1)
        row["power"] = row["members_flagged"] / len(members)
        rows[label] = row
        print(f"  {label}: {json.dumps({k: v for k, v in row.items() if k != 'fdr'})}", flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strangers", type=int, default=9800)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "namesakes")
    ap.add_argument("--skip-world", action="store_true")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    dirs = prepare(args.out, args.strangers)
    figures = {"strangers": args.strangers}
    if not args.skip_world:
        figures["world"] = world_rules(dirs, args.out)
    figures["namesakes"] = namesake_runs(dirs, args.out)
    (args.out / "namesakes.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
