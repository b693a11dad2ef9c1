"""What the sequential extension costs: one audit of N people (default 10^4) with and without it, time and peak
memory, measured in one run, on this machine (issue 18, item 4).

Both runs are `idia attack`'s library call on the same people (`bench_scale.make_people`: one distinct 64x64
photo each, names with a middle initial, none a distractor), in a fresh process with empty caches, on the
world's shipped model, with the default settings (per-person question among 999 made-up names, BH at --fdr 0.05):

  without   --max-distractors 999: every p-value is today's (rank among the 999), the face side still runs
  with      the default --max-distractors: people with fewer than h = 10 of the 999 at or above their name go on
            through further distractors (Besag-Clifford) until BH at q could flag 20 of N (10^4: 9,999 draws)

    .venv/bin/python bench/bench_sequential.py [--people 10000]

Prints each run's time, CPU time, peak RSS and the smallest p-value reached, then the ratios. The issue's
bound is 1.5x for the 10^5 audit; two cold 10^5 audits take about two hours on this project's 2-core machine, so
the default is 10^4 (the extension's work grows with the people near the threshold, a share of N).

--shared-cache halves that: the run with the extension goes first, cold, and the run without it reuses its
caches, so only its decide stage is new work. The extension lives in the decide stage (the further distractors are
encoded there), so the cold run without it is the cold run with it less its decide stage plus the warm run's:

    ratio = total_with / (total_with - decide_with + decide_without)

Peak memory is then compared for the decide stage's share only (the warm run encodes nothing).

    .venv/bin/python bench/bench_sequential.py --people 100000 --shared-cache
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
t0 = time.perf_counter()
from idia.attack.settings import AttackSettings
from idia.attack.run import run_attack, write_attack
from idia.world import shipped_model_dir
people, cache, out, max_distractors = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
s = AttackSettings(model=str(shipped_model_dir()), people=people, cache_dir=cache, progress=False,
                   max_distractors=max_distractors)
run = run_attack(s)
write_attack(run, out)
t1 = time.perf_counter()
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
r = run.result
extended = sum(p.evidence["permutation"].get("drawn", 0) > p.evidence["permutation"]["n_distractors"]
               for p in r.persons)
print(json.dumps({"n": len(r.persons), "max_distractors": max_distractors, "total_s": t1 - t0,
                  "cpu_s": me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime,
                  "timings": {k: v for k, v in run.timings.items() if k.endswith("_s")},
                  "peak_rss_mb": me.ru_maxrss / 1024, "extended": int(extended),
                  "smallest_p": min(p.p_value for p in r.persons), "flagged": sum(p.member for p in r.persons),
                  "sequential": r.rule["sequential"]}))
"""


def run_once(people: Path, work: Path, max_distractors: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(people), str(work / "cache"), str(work / "out"),
                           str(max_distractors)], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    from bench_scale import make_people

    from idia.attack.settings import DEFAULT_MAX_DISTRACTORS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=10_000)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "bench_sequential.json")
    ap.add_argument("--shared-cache", action="store_true", help="the run without the extension reuses the caches")
    args = ap.parse_args(argv)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        people = make_people(Path(tmp) / "people", args.people)
        print(f"{args.people} people written in {time.perf_counter() - t:.0f} s", flush=True)
        runs = (("with", DEFAULT_MAX_DISTRACTORS), ("without", 999)) if args.shared_cache else \
            (("without", 999), ("with", DEFAULT_MAX_DISTRACTORS))
        for label, n_max in runs:
            rows[label] = run_once(people, Path(tmp) / ("shared" if args.shared_cache else label), n_max)
            print(label, json.dumps(rows[label]), flush=True)
    w, wo = rows["with"], rows["without"]
    if args.shared_cache:
        return _shared_cache_ratio(args, w, wo, rows)
    ratios = {"time": w["total_s"] / wo["total_s"], "cpu": w["cpu_s"] / wo["cpu_s"],
              "peak_rss": w["peak_rss_mb"] / wo["peak_rss_mb"]}
    print(f"\n{args.people} people: without extension {wo['total_s']:.1f} s, {wo['peak_rss_mb']:.0f} MB; with "
          f"{w['total_s']:.1f} s, {w['peak_rss_mb']:.0f} MB ({w['extended']} people extended, smallest p "
          f"{w['smallest_p']:.3g} against {wo['smallest_p']:.3g})")
    print(f"ratio with / without: time {ratios['time']:.2f}x, CPU {ratios['cpu']:.2f}x, peak memory "
          f"{ratios['peak_rss']:.2f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"people": args.people, "runs": rows, "ratios": ratios}, indent=2) + "\n")
    return 0


def _shared_cache_ratio(args, w: dict, wo: dict, rows: dict) -> int:
    """The ratio when the run without the extension was warm: its cold total estimated as the cold run's total
    with the decide stage swapped (the module docstring)."""
    decide_w, decide_wo = w["timings"]["decide_s"], wo["timings"]["decide_s"]
    cold_without = w["total_s"] - decide_w + decide_wo
    ratios = {"time": w["total_s"] / cold_without, "decide": decide_w / decide_wo,
              "peak_rss_warm_decide": w["peak_rss_mb"] / wo["peak_rss_mb"]}
    print(f"\n{args.people} people: with the extension {w['total_s']:.1f} s cold (decide {decide_w:.1f} s, "
          f"{w['peak_rss_mb']:.0f} MB); without it the decide stage takes {decide_wo:.1f} s ({wo['peak_rss_mb']:.0f} "
          f"MB warm), so about {cold_without:.1f} s cold ({w['extended']} people extended, smallest p "
          f"{w['smallest_p']:.3g} against {wo['smallest_p']:.3g})")
    print(f"ratio with / without: time {ratios['time']:.2f}x (decide stage alone {ratios['decide']:.2f}x)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"people": args.people, "shared_cache": True, "runs": rows, "ratios": ratios},
                                   indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
