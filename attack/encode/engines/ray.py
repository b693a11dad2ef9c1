"""The Ray engine: photos decoded and encoded by Ray Data actors, one model per actor, on a local Ray or a cluster.

The driver sends `(position, path)` rows (`ray.data.from_items`); `map_batches` runs them through a pool of
actors, each of which rebuilds the model once from its config and a state dict placed in Ray's object store (no
pickled closures of big objects, no LoadedModel on the wire), reads each photo once and decodes it only if its bytes
hash to the SHA-256 the scan recorded (`attack.inputs.photos.load_checked`: a photo changed since is refused), with
the model's preprocessing (rebuilt from its recorded config), and returns embeddings. They stream back to the driver
in whatever order they finish; the Encoder puts them in place by position and writes cache shards as they arrive.
Text embeddings never leave the driver: no actor stage needs them.

Photos are read by the actors, so every node must see them at the same path (a shared file system).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from idia.attack.encode.engines import EncodingJob, register
from idia.attack.encode.engines.local import decode_failure, describe_failure
from idia.errors import InputError


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise InputError("--engine ray needs Ray: pip install 'idia[ray]'") from None
    return ray


def start_ray(address: str | None, num_cpus: int | None = None):
    """Join `address`, or start a local Ray on this machine's CPUs bound to 127.0.0.1; reuse a running one."""
    ray = _ray()
    if ray.is_initialized():
        return ray
    # Ray reports usage statistics over the network unless told not to; an audit never talks to the outside.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address is None:
        # Local workers run this Python, whose site-packages hold idia (installed, or editable from a checkout).
        ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False, _node_ip_address="127.0.0.1",
                 logging_level="WARNING", configure_logging=True,
                 runtime_env={"env_vars": {"RAY_USAGE_STATS_ENABLED": "0"}})
    else:
        try:
            ray.init(address=address, logging_level="WARNING")
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise InputError(f"--ray-address {address}: cannot join the Ray cluster ({e})") from None
    return ray


class PhotoActor:
    """One model per actor: built from config + state dict once, then called on batches of (position, path)."""

    def __init__(self, model_cfg: dict, preprocess_cfg: dict, state_ref, device: str, precision: str, threads: int,
                 draft_to: int | None = None):
        self.draft_to = draft_to
        import ray
        import torch
        from open_clip.transform import PreprocessCfg, image_transform_v2

        from idia.attack.model.load import instantiate
        if device == "cpu":
            torch.set_num_threads(max(1, threads))
        state = ray.get(state_ref[0])  # wrapped in a list so Ray hands over the reference, not a copy per actor
        net = instantiate(model_cfg)
        net.load_state_dict(state, strict=True)
        self.model = net.to(device).eval()
        self.device = torch.device(device)
        self.precision = precision
        known = set(PreprocessCfg.__dataclass_fields__)
        self.preprocess = image_transform_v2(PreprocessCfg(**{k: v for k, v in preprocess_cfg.items() if k in known}),
                                             is_train=False)
        self.dim = int(model_cfg["embed_dim"])

    def __call__(self, batch: dict) -> dict:
        import torch

        from idia.attack.inputs.photos import load_checked
        from idia.attack.model.device import autocast
        positions = batch["pos"].astype(np.int64)
        emb = np.full((len(positions), self.dim), np.nan, dtype=np.float32)
        errors = np.array([""] * len(positions), dtype=object)
        pixels, ok = [], []
        for i, (path, sha) in enumerate(zip(batch["path"], batch["sha256"])):
            try:
                pixels.append(self.preprocess(load_checked(Path(str(path)), str(sha) or None, self.draft_to)))
                ok.append(i)
            except Exception as e:  # named on the driver; the scan already checked the file
                errors[i] = describe_failure(e)
        if ok:
            with torch.no_grad(), autocast(self.device, self.precision):
                feats = self.model.encode_image(torch.stack(pixels).to(self.device))
            emb[ok] = torch.nn.functional.normalize(feats.float(), dim=-1).cpu().numpy()
        return {"pos": positions, "emb": emb, "error": errors.astype(str)}


@register
class RayEngine:
    """`address`: None (a local Ray, started here), 'auto', 'ray://HOST:PORT' or 'HOST:PORT'. `actors`: how many
    models run at once (default: one per GPU of the cluster, else one per CPU)."""

    name = "ray"

    def __init__(self, address: str | None = None, actors: int | None = None, num_cpus: int | None = None):
        self.address = address
        self.actors = actors
        self.num_cpus = num_cpus

    def _placement(self, job: EncodingJob) -> tuple[str, int, float]:
        """(actor device, actors, CPUs per actor), from the cluster's resources and --device."""
        if not hasattr(self, "placement_"):
            ray = start_ray(self.address, self.num_cpus)
            res = ray.cluster_resources()
            gpus, cpus = int(res.get("GPU", 0)), max(1, int(res.get("CPU", 1)))
            wants = str(job.device)
            if wants in ("cpu", "mps") or not gpus:
                if wants.startswith("cuda"):
                    raise InputError(f"--device {wants}: the Ray cluster has no GPU (use --device cpu or auto)")
                self.placement_ = ("cpu", self.actors or cpus, 1.0)
            else:
                self.placement_ = ("cuda", self.actors or gpus, 0.0)
        return self.placement_

    def device_type(self, job: EncodingJob) -> str:
        return self._placement(job)[0]

    def encode(self, job: EncodingJob, paths: Sequence[Path],
               sha256s: Sequence[str | None] | None = None) -> Iterator[tuple[list[int], np.ndarray]]:
        ray = _ray()
        device, actors, cpus_each = self._placement(job)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = bool(job.progress)
        if not job.progress:
            import logging
            logging.getLogger("ray.data").setLevel(logging.WARNING)
        ctx.execution_options.preserve_order = False  # the Encoder places rows by position
        loaded = job.loaded
        state = {k: v.detach().to("cpu") for k, v in loaded.model.state_dict().items()}
        state_ref = ray.put(state)
        bs = job.batch_size
        hashes = list(sha256s) if sha256s is not None else [None] * len(paths)
        rows = [{"pos": i, "path": str(p), "sha256": h or ""} for i, (p, h) in enumerate(zip(paths, hashes))]
        ds = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows) // bs + 1, 100_000)))
        resources = {"num_gpus": 1} if device == "cuda" else {"num_cpus": cpus_each}
        ds = ds.map_batches(
            PhotoActor, batch_size=bs, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=actors),
            fn_constructor_kwargs={"model_cfg": loaded.model_cfg, "preprocess_cfg": loaded.preprocess_cfg,
                                   "state_ref": [state_ref], "device": device, "precision": job.precision,
                                   "threads": int(cpus_each) or 1, "draft_to": job.draft_to},
            **resources)
        self.used_ = {"actors": actors, "actor_device": device}
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            bad = np.flatnonzero(batch["error"] != "")
            if len(bad):
                i = int(bad[0])
                raise decode_failure(paths[int(batch["pos"][i])], str(batch["error"][i]))
            yield batch["pos"].astype(int).tolist(), np.asarray(batch["emb"], dtype=np.float32)

    def describe(self) -> dict:
        out = {"name": self.name, "address": self.address or "local"}
        if hasattr(self, "used_"):
            out.update(self.used_)
        return out
