"""Camera photos: does decoding overlap with encoding? Ratios measured in one run, on this machine.

    image-stage wall time (attack.encoder.Encoder.encode_photos, caches off)
      / max(decode + preprocess alone with the same workers, the encoder's forward passes alone)

1.0 means decoding hides completely behind the model (or the model behind decoding); 2.0 means they add up.
Cores are not independent: a second figure times the forward passes while another process decodes on the side
(`forward_beside_decode`), so the slowdown that comes from the machine (shared caches and memory bandwidth, and
on 2 cores the forward's own threads) is told apart from the pipeline's own overhead:

    image stage / forward beside decoding      (1.0: the pipeline hides decoding completely)
Photos are 2000x1500 JPEGs (quality 90, smooth content with noise, like a camera's), the model a randomly
initialised ViT-B-32 (224 px; no weights needed for timing). Each measurement is the fastest of --repeats,
interleaved, so a busy moment on a shared machine does not land on one side of the ratio only.

    .venv/bin/python bench/bench_photos.py [--photos 96] [--workers 1] [--batch 32] [--repeats 3] [--threads N]
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
import torch
from PIL import Image

from idia.attack.encode.encoder import Encoder
from idia.attack.encode.engines.local import _collate, _Photos
from idia.attack.model.load import load_clip


def camera_jpegs(folder: Path, n: int, size=(2000, 1500), seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    paths = []
    for i in range(n):
        a, b, c = rng.uniform(0.002, 0.01, 3)
        base = np.stack([np.sin(xx * a + i), np.cos(yy * b - i), np.sin((xx + yy) * c)], axis=-1)
        img = (127 + 100 * base + rng.normal(0, 12, (h, w, 3))).clip(0, 255).astype(np.uint8)
        path = folder / f"{i:04d}.jpg"
        Image.fromarray(img).save(path, quality=90)
        paths.append(path)
    return paths


def _time(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def decode_only(loaded, paths, workers: int, batch: int, draft_to: int | None = None) -> None:
    loader = torch.utils.data.DataLoader(_Photos(paths, loaded.preprocess, draft_to), batch_size=batch,
                                         num_workers=workers,
                                         collate_fn=_collate, prefetch_factor=4 if workers else None,
                                         multiprocessing_context="fork" if workers else None)
    for _ in loader:
        pass


DECODER = """
import sys
from PIL import Image
from open_clip.transform import image_transform
preprocess = image_transform(224, is_train=False)
while True:
    for p in sys.argv[1:]:
        preprocess(Image.open(p).convert("RGB"))
"""


def beside_decoding(fn, paths) -> float:
    """fn's time while another process (a fresh one: forking torch's thread pool can hang) decodes and
    preprocesses photos without pause, as a decoding worker does."""
    proc = subprocess.Popen([sys.executable, "-c", DECODER, *map(str, paths)])
    time.sleep(3)  # its imports done, it is decoding
    try:
        return _time(fn)
    finally:
        proc.kill()
        proc.wait()


@torch.no_grad()
def forward_only(loaded, pixels: torch.Tensor, batch: int) -> None:
    for s in range(0, len(pixels), batch):
        loaded.model.encode_image(pixels[s:s + batch])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=96)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads for the forward (default: torch's own, all cores)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "bench_photos.json")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    loaded = load_clip("ViT-B-32", allow_random=True)
    with tempfile.TemporaryDirectory() as tmp:
        paths = camera_jpegs(Path(tmp), args.photos)
        pixels = torch.stack([loaded.preprocess(Image.open(p).convert("RGB")) for p in paths])
        best = {"decode": [], "forward": [], "forward_beside_decode": [], "stage": [], "sequential": [], "decode_fast": [], "stage_fast": []}
        fast = Encoder(loaded, device="cpu", batch_size=args.batch, workers=args.workers, use_cache=False,
                       progress=False, fast_decode=True)
        for _ in range(args.repeats):
            best["decode"].append(_time(lambda: decode_only(loaded, paths, args.workers, args.batch)))
            best["forward"].append(_time(lambda: forward_only(loaded, pixels, args.batch)))
            best["forward_beside_decode"].append(beside_decoding(lambda: forward_only(loaded, pixels, args.batch),
                                                                 paths))
            enc = Encoder(loaded, device="cpu", batch_size=args.batch, workers=args.workers, use_cache=False,
                          progress=False)
            best["stage"].append(_time(lambda: enc.encode_photos(paths)))
            seq = Encoder(loaded, device="cpu", batch_size=args.batch, workers=0, use_cache=False, progress=False)
            best["sequential"].append(_time(lambda: seq.encode_photos(paths)))
            best["decode_fast"].append(_time(lambda: decode_only(loaded, paths, args.workers, args.batch,
                                                                 fast.draft_to)))
            best["stage_fast"].append(_time(lambda: fast.encode_photos(paths)))
        exact_emb, fast_emb = enc.encode_photos(paths), fast.encode_photos(paths)
        cos = (exact_emb * fast_emb).sum(axis=1)
    t = {k: min(v) for k, v in best.items()}
    bound = max(t["decode"], t["forward"])
    row = {"photos": args.photos, "size": "2000x1500 JPEG q90", "model": "ViT-B-32 random init",
           "workers": args.workers, "batch": args.batch, "torch_threads": torch.get_num_threads(),
           **{f"{k}_s": round(v, 3) for k, v in t.items()},
           "ms_per_photo": {k: round(1000 * v / args.photos, 1) for k, v in t.items()},
           "ratio_stage": round(t["stage"] / bound, 3),
           "ratio_stage_to_forward_beside_decode": round(t["stage"] / t["forward_beside_decode"], 3),
           "forward_slowdown_beside_decode": round(t["forward_beside_decode"] / t["forward"], 3), "ratio_sequential": round(t["sequential"] / bound, 3),
           "ratio_stage_fast_decode": round(t["stage_fast"] / max(t["decode_fast"], t["forward"]), 3),
           "fast_decode_vs_exact": {"min_cosine": round(float(cos.min()), 6), "mean_cosine": round(float(cos.mean()), 6)}}
    print(f"{args.photos} photos, {args.workers} worker(s), batch {args.batch}, torch threads {row['torch_threads']}")
    for k in ("decode", "forward", "forward_beside_decode", "stage", "sequential", "decode_fast", "stage_fast"):
        print(f"  {k:>21s}: {t[k]:7.2f} s  ({row['ms_per_photo'][k]:6.1f} ms/photo)")
    print(f"  image stage / max(decode, forward) = {row['ratio_stage']:.3f}   (goal <= 1.2)")
    print(f"  the machine: forward beside a decoding process / forward alone = "
          f"{row['forward_slowdown_beside_decode']:.3f}")
    print(f"  the pipeline: image stage / forward beside decoding = {row['ratio_stage_to_forward_beside_decode']:.3f}"
          "   (1.0: decoding fully hidden)")
    print(f"  decoding in the main process instead = {row['ratio_sequential']:.3f}")
    print(f"  --fast-decode: image stage / max(decode, forward) = {row['ratio_stage_fast_decode']:.3f}, "
          f"image stage / exact-decode bound = {t['stage_fast'] / bound:.3f}; embeddings vs exact decode: "
          f"cosine min {row['fast_decode_vs_exact']['min_cosine']}, mean {row['fast_decode_vs_exact']['mean_cosine']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(row, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
