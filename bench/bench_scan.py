"""`idia scan` measured: quality of the names found, captions per second per core, and memory that stays bounded.

    .venv/bin/python bench/bench_scan.py [--sizes 100000,1000000] [--workers 2] [--skip-quality]

1. Quality, on labelled caption sets of 20,000 captions (world.caption_set, seeds 0 to 2): precision and recall of
   the names found in at least 3 captions, and the share of people whose count is within 10% of the truth.
2. Throughput: N captions in 8 text files, drawn the same way (chunks of 20,000 with their own seeds, so the number of
   distinct names grows with N as in real data), scanned by `scan_captions` in a fresh process with one worker
   (captions per second per core), and with --workers processes. Two mixes: the labelled set's (60% of captions
   name someone, traps in the rest) and a web-like one (10% name someone).
3. Memory: the peak resident memory of the scanning process (one worker, in-process) at each size, with the
   in-memory name table bounded to 5,000 names (spilling to disk beyond), and unbounded. With the bound, peak
   memory does not grow with N; the counts are the same.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHUNK = 20_000


def quality(seeds=(0, 1, 2)) -> list[dict]:
    from idia.attack.inputs.captions.extract import RuleExtractor
    from idia.attack.inputs.captions.run import keep_row
    from idia.attack.inputs.captions.tally import Counts, Tally
    from idia.world.caption_set import evaluate, labelled_captions
    extract, out = RuleExtractor().extract, []
    for seed in seeds:
        captions = labelled_captions(CHUNK, seed=seed)
        tally = Tally()
        for c in captions.captions:
            tally.add(c, extract(c))
        counts = Counts()
        counts.add(tally)
        found = {k: e[0] for k, e in counts.rows(keep_row(1))}
        q = evaluate(found, captions)
        out.append({"seed": seed, **{k: q[k] for k in ("precision", "recall", "counts_within", "n_relevant",
                                                        "n_predicted")}})
    return out


def write_captions(folder: Path, n: int, person_share: float, shards: int = 8) -> None:
    """n captions in `shards` text files (a training set comes in shards: they are the unit of parallel work)."""
    from idia.world.caption_set import labelled_captions
    folder.mkdir(parents=True)
    files = [open(folder / f"part-{s:03d}.txt", "w", encoding="utf-8") for s in range(shards)]
    for i, start in enumerate(range(0, n, CHUNK)):
        chunk = labelled_captions(min(CHUNK, n - start), seed=1000 + i, person_share=person_share)
        files[i % shards].write("\n".join(c.replace("\n", " ") for c in chunk.captions) + "\n")
    for f in files:
        f.close()


CHILD = """
import json, sys, time
from pathlib import Path
from idia.attack.inputs.captions.run import ScanSettings, scan_captions
src, out, workers, bound = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])


def peak_mb():
    # VmHWM: this process's own peak (getrusage's ru_maxrss would carry the parent's from before exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

t = time.perf_counter()
r = scan_captions(ScanSettings(sources=[Path(src)], out=Path(out), workers=workers, max_in_memory=bound,
                               progress=False))
print(json.dumps({"seconds": time.perf_counter() - t, "captions": r.captions, "people": r.people,
                  "peak_rss_mb": peak_mb(),
                  "spills": r.record["memory"]["spills"],
                  "peak_entries": r.record["memory"]["peak_entries_in_memory"]}))
"""


def run_child(src: Path, out: Path, workers: int, bound: int) -> dict:
    proc = subprocess.run([sys.executable, "-P", "-c", CHILD, str(src), str(out), str(workers), str(bound)],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}")
    if not args.skip_quality:
        for q in quality():
            print(f"quality seed {q['seed']}: precision {q['precision']:.3f} recall {q['recall']:.3f} "
                  f"counts within 10% {q['counts_within']:.3f} ({q['n_relevant']} people named >= 3 times, "
                  f"{q['n_predicted']} found)")
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-scan-") as tmp:
        tmp = Path(tmp)
        for share, mix in ((0.6, "labelled mix"), (0.1, "web-like mix")):
            for n in sizes:
                src = tmp / f"captions-{n}-{share}"
                t = time.perf_counter()
                write_captions(src, n, share)
                made = time.perf_counter() - t
                one = run_child(src, tmp / "o1", 1, 5_000)
                many = run_child(src, tmp / "o2", args.workers, 5_000)
                free = run_child(src, tmp / "o3", 1, 10**9)
                same = (tmp / "o1" / "names.csv").read_bytes() == (tmp / "o3" / "names.csv").read_bytes()
                size = sum(f.stat().st_size for f in src.iterdir())
                print(f"{mix}, {n:,} captions in 8 files ({size / 2**20:.0f} MiB, made in {made:.0f} s): "
                      f"1 worker {one['captions'] / one['seconds']:,.0f} captions/s/core; "
                      f"{args.workers} workers {many['captions'] / many['seconds']:,.0f} captions/s; "
                      f"{one['people']:,} people listed")
                print(f"  memory: bounded to 5,000 names: peak RSS {one['peak_rss_mb']:.0f} MB "
                      f"({one['spills']} spills, at most {one['peak_entries']:,} names held); unbounded: "
                      f"{free['peak_rss_mb']:.0f} MB ({free['peak_entries']:,} names held); same names.csv: {same}")
                shutil.rmtree(src)


if __name__ == "__main__":
    main()
