"""How much does an IDIA cost beyond asking the model? Ratios measured in one run, on this machine.

    IDIA wall time (scan, hash, candidates, encode, decide, tables) / time to just encode the same images and
    the same prompt texts with the same model

cold (empty text and image caches) and warm (text and image embeddings read from the on-disk caches), on the
shipped world model and on a randomly
initialised ViT-B-32 (no weights needed for timing). The encoder baseline tokenizes every prompt whole and runs our
trimmed text encoding; the IDIA tokenizes each template and each name once (`attack.embed.tokenize_prompts`,
exact), which is most of what a tiny model's text side costs. `trim x` is what trimming saves over the full
77-token (or 16-token) context, on a sample of prompts.

    .venv/bin/python bench/bench_idia.py [--people 60] [--images 10] [--vit-people 8] [--vit-images 4]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from idia.attack.encode.encoder import Encoder, encode_texts
from idia.attack.inputs import prompts
from idia.attack.inputs.distractors import build_candidates
from idia.attack.inputs.people import scan_people
from idia.attack.model.load import load_clip
from idia.attack.run import run_attack
from idia.attack.settings import AttackSettings
from idia.world import load_world, shipped_model_dir, write_photos
from idia.world.world import World


def _subset_photos(out: Path, n_people: int, n_images: int) -> Path:
    world = load_world()
    keep = [p for p in world.identities if p.role != "reference"][:n_people]
    small = World(spec=world.spec, identities=keep)
    write_photos(small, out, images_per_person=n_images, shapes_per_class=1)
    return out / "people"


def _time(fn):
    t = time.perf_counter()
    value = fn()
    return time.perf_counter() - t, value


def measure(label: str, loaded, people: Path, n_candidates: int, cache: Path, full_context: bool,
            repeats: int) -> dict:
    """Interleave the encoder baseline, a cold IDIA (fresh cache) and a warm one, `repeats` times; keep the
    fastest of each, so a busy moment on a shared machine does not land on one side of the ratio only."""
    persons = scan_people(people)
    cand = build_candidates([p.name for p in persons], n_candidates, seed=0)
    texts = prompts.fill(prompts.PAPER_TEMPLATES, cand.names)
    paths = [ph.path for p in persons for ph in p.photos]
    best = {"images": [], "texts": [], "cold": [], "warm": []}
    for r in range(repeats):
        plain = Encoder(loaded, device="cpu", workers=0, use_cache=False, progress=False)
        best["images"].append(_time(lambda: plain.encode_photos(paths))[0])
        best["texts"].append(_time(lambda: encode_texts(loaded, texts, progress=False))[0])
        # cold: empty caches (text and image) on disk; warm: both read from disk by a new encoder
        cfg = AttackSettings(model=label, people=people, n_candidates=n_candidates, cache_dir=cache / str(r),
                           progress=False, workers=0, device="cpu")
        best["cold"].append(_time(lambda: run_attack(cfg, loaded=loaded))[0])
        best["warm"].append(_time(lambda: run_attack(cfg, loaded=loaded))[0])
    t_img, t_txt, t_cold, t_warm = (min(best[k]) for k in ("images", "texts", "cold", "warm"))
    speedup = None
    if full_context:  # on a sample: the full 77-token context is slow on a real text tower
        sample = texts[:: max(1, len(texts) // 420)]
        t_full = _time(lambda: encode_texts(loaded, sample, trim=False, progress=False))[0]
        speedup = t_full / _time(lambda: encode_texts(loaded, sample, progress=False))[0]
    encode = t_img + t_txt
    row = {"model": label, "people": len(persons), "images": len(paths), "prompt_texts": len(texts),
           "repeats": repeats, "encode_images_s": round(t_img, 3), "encode_texts_trimmed_s": round(t_txt, 3),
           "idia_cold_s": round(t_cold, 3), "idia_warm_s": round(t_warm, 3),
           "ratio_cold": round(t_cold / encode, 3), "ratio_warm": round(t_warm / encode, 3)}
    if speedup is not None:
        row["trim_speedup"] = round(speedup, 2)
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=60)
    ap.add_argument("--images", type=int, default=10)
    ap.add_argument("--candidates", type=int, default=1000)
    ap.add_argument("--vit-people", type=int, default=8)
    ap.add_argument("--vit-images", type=int, default=4)
    ap.add_argument("--vit-candidates", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-vit", action="store_true")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "bench_idia.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        world_model = load_clip(str(shipped_model_dir()))
        people = _subset_photos(tmp / "world", args.people, args.images)
        rows.append(measure("world (tiny CLIP, 64 px)", world_model, people, args.candidates, tmp / "c1", True,
                            args.repeats))
        if not args.skip_vit:
            torch.manual_seed(0)
            vit = load_clip("ViT-B-32", allow_random=True)
            people = _subset_photos(tmp / "vit", args.vit_people, args.vit_images)
            rows.append(measure("ViT-B-32 (random init, 224 px)", vit, people, args.vit_candidates, tmp / "c2", True,
                                args.repeats))
    print(f"{'model':34s} {'imgs':>5s} {'texts':>6s} {'encode s':>9s} {'cold s':>8s} {'warm s':>8s} "
          f"{'cold/enc':>9s} {'warm/enc':>9s} {'trim x':>7s}")
    for r in rows:
        enc = r["encode_images_s"] + r["encode_texts_trimmed_s"]
        print(f"{r['model']:34s} {r['images']:5d} {r['prompt_texts']:6d} {enc:9.2f} {r['idia_cold_s']:8.2f} "
              f"{r['idia_warm_s']:8.2f} {r['ratio_cold']:9.3f} {r['ratio_warm']:9.3f} {r.get('trim_speedup', 0):7.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
