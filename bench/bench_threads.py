"""Does `defend redact` give the same checkpoint at another thread count? Measured in one run, on this machine.

Redacts the same names from the shipped world model for a few steps, once per thread setting, each in a fresh
process (OMP_NUM_THREADS must be set before torch starts), and prints the SHA-256 of each defended checkpoint
and the largest absolute weight difference from the first setting. Same thread count twice: identical bytes.
Different thread counts: float reductions run in another order, so weights differ within a tolerance.

    .venv/bin/python bench/bench_threads.py [--steps 20] [--threads 1,default,1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys, torch
from idia.attack.model.load import load_clip
from idia.defense.redact import NameRedactor
from idia.world import read_world_record, shipped_model_dir
loaded = load_clip(str(shipped_model_dir()))
members = sorted(n for n, role in read_world_record()["membership"].items() if role == "member")[:3]
r = NameRedactor(steps=int(sys.argv[1]), seed=0, progress=False).fit(loaded, members, warn=lambda m: None)
torch.save({k: v.detach().cpu() for k, v in r.student_.state_dict().items()}, sys.argv[2])
print(json.dumps({"sha256": r.checkpoint_sha256_after_, "torch_threads": torch.get_num_threads()}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", default="1,default,1", help="comma-separated OMP_NUM_THREADS values")
    args = ap.parse_args()
    import torch
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, t in enumerate(args.threads.split(",")):
            env = dict(os.environ)
            env.pop("OMP_NUM_THREADS", None)
            if t != "default":
                env["OMP_NUM_THREADS"] = t
            out = Path(tmp) / f"{i}.pt"
            proc = subprocess.run([sys.executable, "-c", CHILD, str(args.steps), str(out)], env=env,
                                  capture_output=True, text=True, check=True)
            info = json.loads(proc.stdout.strip().splitlines()[-1])
            runs.append((t, info, torch.load(out, weights_only=True)))
        base = runs[0][2]
        for t, info, state in runs:
            diff = max(float((state[k].float() - base[k].float()).abs().max()) for k in base)
            print(f"OMP_NUM_THREADS={t:<8} torch threads {info['torch_threads']:>2}  "
                  f"sha256 {info['sha256'][:16]}  max |w - w(first)| = {diff:.3g}")


if __name__ == "__main__":
    main()
