"""Ray's overhead against the local engine, and the numbers docs/SCALING.md works out N nodes from.

Measured in one run, on this machine:
  * ratio  = image stage with --engine ray (local Ray, actors on this machine's CPUs) / with --engine local,
    same photos, same model, caches off; Ray's own start (ray.init) is timed apart, the actors' start is not
    (each run builds its actor pool: that is what a user pays).
  * single-worker throughput: the local engine with one torch thread and no decoding workers (photos/s per core:
    what one CPU actor does).
  * driver gathering: how many embeddings/s the driver takes in from Ray Data (rows made by tasks, no model),
    and how fast the Encoder writes them into verified cache shards.
  * photo bytes: the mean size of the photos (what the shared file system serves per photo).
  * decide stage per person: `run_attack`'s decide time on the world, divided by the people decided.

Photos are 2000x1500 camera-like JPEGs and the model a randomly initialised ViT-B-32 (as in bench_photos.py).

    .venv/bin/python bench/bench_ray.py [--photos 64] [--batch 16] [--gather 100000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_photos import camera_jpegs

from idia.attack.encode.caches import ImageCache
from idia.attack.encode.encoder import Encoder
from idia.attack.encode.engines.ray import start_ray
from idia.attack.model.load import load_clip


def _time(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def gather_rate(ray, n: int, dim: int) -> float:
    """Embeddings per second the driver receives from Ray Data (the rows are made by tasks, no model)."""
    def make(batch):
        return {"pos": batch["id"], "emb": np.ones((len(batch["id"]), dim), dtype=np.float32)}
    ds = ray.data.range(n, override_num_blocks=max(1, n // 4096)).map_batches(make, batch_format="numpy")
    t = time.perf_counter()
    got = sum(len(b["pos"]) for b in ds.iter_batches(batch_size=None, batch_format="numpy"))
    assert got == n
    return n / (time.perf_counter() - t)


def shard_rate(n: int, dim: int, folder: Path) -> float:
    """Embeddings per second the Encoder writes into verified cache shards (SHA-256 and atomic write)."""
    cache = ImageCache(folder)
    keys = [f"{i:064x}" for i in range(n)]
    emb = np.ones((n, dim), dtype=np.float32)
    t = time.perf_counter()
    for s in range(0, n, 4096):
        cache.add(keys[s:s + 4096], emb[s:s + 4096])
    return n / (time.perf_counter() - t)


def decide_per_person(folder: Path) -> dict:
    from idia.attack.run import run_attack
    from idia.attack.settings import AttackSettings
    from idia.world import load_world, shipped_model_dir, write_photos
    write_photos(load_world(shipped_model_dir()), folder, images_per_person=4, shapes_per_class=1)
    run = run_attack(AttackSettings(model=str(shipped_model_dir()), people=folder / "people",
                                    reference=folder / "reference", target_fpr=0.05, cache_dir=folder / "cache",
                                    progress=False, command="bench"))
    n = len(run.result.persons) + len(run.result.reference)
    return {"people": n, "photos_per_person": 4, "candidates": run.question.n_candidates,
            "templates": len(run.scan.templates), "text_s": round(run.timings["text_s"], 3),
            "prompt_texts": run.timings["n_prompt_texts"], "decide_s": round(run.timings["decide_s"], 3),
            "decide_ms_per_person": round(1000 * run.timings["decide_s"] / n, 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--gather", type=int, default=100_000, help="rows for the driver-gathering measurement")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "bench_ray.json")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    loaded = load_clip("ViT-B-32", allow_random=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = camera_jpegs(tmp / "photos", args.photos)
        photo_bytes = float(np.mean([p.stat().st_size for p in paths]))
        common = dict(device="cpu", batch_size=args.batch, use_cache=False, progress=False)
        local_s, local_emb = _time(lambda: Encoder(loaded, **common).encode_photos(paths))
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        single_s, _ = _time(lambda: Encoder(loaded, workers=0, **common).encode_photos(paths))
        torch.set_num_threads(threads)
        init_s, ray = _time(lambda: start_ray(None))
        enc = Encoder(loaded, engine="ray", **common)
        ray_s, ray_emb = _time(lambda: enc.encode_photos(paths))
        ray_again_s, _ = _time(lambda: Encoder(loaded, engine="ray", **common).encode_photos(paths))
        dim = loaded.embed_dim
        gathered = gather_rate(ray, args.gather, dim)
        ray.shutdown()
        sharded = shard_rate(min(args.gather, 65536), dim, tmp / "shards")
        decide = decide_per_person(tmp / "world")
    row = {
        "photos": args.photos, "photo": "2000x1500 JPEG q90", "mean_photo_bytes": round(photo_bytes),
        "model": "ViT-B-32 random init", "batch": args.batch, "torch_threads": threads,
        "ray_actors": enc.image_engine.describe().get("actors"),
        "local_s": round(local_s, 3), "ray_s": round(ray_s, 3), "ray_second_run_s": round(ray_again_s, 3),
        "ray_init_s": round(init_s, 3),
        "ratio_ray_over_local": round(ray_s / local_s, 3),
        "ratio_ray_second_run_over_local": round(ray_again_s / local_s, 3),
        "max_abs_embedding_difference": float(np.abs(ray_emb - local_emb).max()),
        "single_worker_photos_per_s": round(args.photos / single_s, 2),
        "embedding_bytes": dim * 4, "driver_gather_embeddings_per_s": round(gathered),
        "cache_shard_embeddings_per_s": round(sharded), "decide": decide,
    }
    print(f"{args.photos} photos ({row['photo']}, mean {photo_bytes / 1e6:.2f} MB), {row['model']}, "
          f"batch {args.batch}, {threads} torch threads, {row['ray_actors']} Ray actor(s)")
    print(f"  local engine          {local_s:7.2f} s")
    print(f"  ray engine            {ray_s:7.2f} s  (again: {ray_again_s:.2f} s; ray.init {init_s:.2f} s apart)")
    print(f"  ray / local           {row['ratio_ray_over_local']:.3f}  (again: "
          f"{row['ratio_ray_second_run_over_local']:.3f}); max |difference| {row['max_abs_embedding_difference']:.2e}")
    print(f"  one worker, 1 thread  {row['single_worker_photos_per_s']:.2f} photos/s")
    print(f"  driver gathers        {gathered:,.0f} embeddings/s ({gathered * dim * 4 / 1e6:,.1f} MB/s); "
          f"cache shards {sharded:,.0f} embeddings/s")
    print(f"  decide                {decide['decide_ms_per_person']:.2f} ms/person ({decide['people']} people, "
          f"{decide['candidates']} candidates, {decide['templates']} templates)")
    print(f"  text side             {decide['text_s']:.2f} s for {decide['prompt_texts']} prompts, once, on the driver")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(row, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
