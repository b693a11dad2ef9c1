"""Redacting many names in one run: time per training step for 10 and for 1,000 names, measured in one run.

The redaction's batch is fixed (128 name captions + 128 clean captions a step), so the time per step should not
grow with the number of names; what grows is the set-up (made-up neighbours, the name pattern that filters the
captions). Prints both, and their ratio, on the world's shipped model.

    .venv/bin/python bench/bench_redact_scale.py [--steps 10] [--device cpu]
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--sizes", default="10,1000")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    from idia.attack.inputs.distractors import make_distractors
    from idia.attack.model.device import resolve_device
    from idia.attack.model.load import load_clip
    from idia.defense.redact import NameRedactor
    from idia.world import shipped_model_dir
    loaded = load_clip(str(shipped_model_dir()), device=resolve_device(args.device))
    rows = []
    for n in (int(x) for x in args.sizes.split(",")):
        names = make_distractors(n, set(), seed=7)
        t0 = time.perf_counter()
        r = NameRedactor(steps=args.steps, progress=False).fit(loaded, names, warn=lambda m: None)
        total = time.perf_counter() - t0
        per_step = r.seconds_ / args.steps
        rows.append((n, per_step, total - r.seconds_))
        print(f"{n:>6} names: {per_step * 1000:8.1f} ms/step, set-up {total - r.seconds_:6.2f} s, "
              f"{len(r.neighbours_)} neighbours protected", flush=True)
    if len(rows) > 1:
        print(f"ratio ms/step {rows[-1][0]} / {rows[0][0]} names: {rows[-1][1] / rows[0][1]:.2f}")


if __name__ == "__main__":
    main()
