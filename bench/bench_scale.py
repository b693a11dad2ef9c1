"""Audits of 10^3 to 10^5 people: time per person and peak memory, measured in one run, on this machine.

Each size runs `idia attack`'s library call (scan → encode → decide → record, results.json and the streamed
scores) in a fresh process with empty caches, on the world's shipped model, one photo per person (distinct
64x64 PNGs). Above 1,000 people the per-person question applies (each person among their own name and the same
999 distractors), so the work per photo is constant and the time per person should be too.

    .venv/bin/python bench/bench_scale.py [--sizes 1000,10000,100000]

Goals (issue 9): time per person at 10^5 within 1.3x of 10^3; peak memory under 5 GB at 5x10^4.
Wall time is what a user waits; CPU time (the process and its decoding workers) is printed beside it because on
a shared machine it is the figure other people's jobs disturb least, and linearity is a statement about work.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_people(root: Path, n: int, seed: int = 0) -> Path:
    from idia.attack.inputs.names import first_names, last_names
    firsts, lasts = first_names(), last_names()
    initials = "ABCDEFGHJKLMNPRSTVW"  # a middle initial: 19 x 160,000 people, none a made-up distractor's name
    rng = np.random.default_rng(seed)
    bases = rng.integers(0, 255, (256, 64, 64, 3), dtype=np.uint8)
    order = rng.permutation(len(firsts) * len(lasts) * len(initials))[:n]
    for i, k in enumerate(order):
        f, rest = k % len(firsts), k // len(firsts)
        m, last = rest % len(initials), rest // len(initials)
        folder = root / f"{firsts[f]} {initials[m]}. {lasts[last]}"
        folder.mkdir(parents=True)
        img = bases[i % 256].copy()
        img[0, 0] = (i & 255, (i >> 8) & 255, (i >> 16) & 255)  # every photo distinct: no cache hit between people
        Image.fromarray(img).save(folder / "photo.png")
    return root


CHILD = r"""
import json, resource, sys, time
from pathlib import Path
t0 = time.perf_counter()
from idia.attack.settings import AttackSettings
from idia.attack.run import run_attack, write_attack
from idia.world import shipped_model_dir
people, cache, out = map(Path, sys.argv[1:4])
s = AttackSettings(model=str(shipped_model_dir()), people=people, cache_dir=cache, progress=False)
t1 = time.perf_counter()
run = run_attack(s)
t2 = time.perf_counter()
write_attack(run, out)
t3 = time.perf_counter()
size = sum(f.stat().st_size for f in out.iterdir())
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"n": len(run.result.persons), "question": run.result.candidates["question"],
                  "import_s": t1 - t0, "attack_s": t2 - t1, "write_s": t3 - t2, "total_s": t3 - t0,
                  "cpu_s": me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime,
                  "timings": {k: v for k, v in run.timings.items() if k.endswith("_s")},
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "output_mb": size / 2**20}))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "bench_scale.json")
    args = ap.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            tmp_n = Path(tmp) / str(n)
            t = time.perf_counter()
            make_people(tmp_n / "people", n)
            print(f"{n} people written in {time.perf_counter() - t:.0f} s", flush=True)
            proc = subprocess.run([sys.executable, "-c", CHILD, str(tmp_n / "people"), str(tmp_n / "cache"),
                                   str(tmp_n / "out")], capture_output=True, text=True)
            if proc.returncode:
                print(proc.stderr[-3000:])
                return 1
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(json.dumps(row), flush=True)
    base = rows[0]["total_s"] / rows[0]["n"]
    base_cpu = rows[0]["cpu_s"] / rows[0]["n"]
    print(f"\n{'people':>8s} {'question':>10s} {'total s':>8s} {'ms/person':>10s} {'x of first':>10s} "
          f"{'CPU ms/person':>14s} {'x of first':>10s} {'peak MB':>8s} {'out MB':>7s}")
    for r in rows:
        per, cpu = r["total_s"] / r["n"], r["cpu_s"] / r["n"]
        r["ms_per_person"], r["cpu_ms_per_person"] = round(1000 * per, 3), round(1000 * cpu, 3)
        r["relative_to_first"], r["cpu_relative_to_first"] = round(per / base, 3), round(cpu / base_cpu, 3)
        print(f"{r['n']:8d} {r['question']:>10s} {r['total_s']:8.1f} {1000 * per:10.2f} {per / base:10.2f} "
              f"{1000 * cpu:14.2f} {cpu / base_cpu:10.2f} {r['peak_rss_mb']:8.0f} {r['output_mb']:7.1f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
