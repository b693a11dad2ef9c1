"""The local engine: photos decoded by torch DataLoader worker processes while the model encodes the previous
batch on this machine's device. This is the engine every other one is compared with."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from idia.attack.encode.engines import EncodingJob, register
from idia.attack.model.device import autocast
from idia.errors import InputError


class _Photos(torch.utils.data.Dataset):
    """Decoding and preprocessing, run in worker processes: (position, pixels) or (position, error). Each photo is
    read once and decoded only if its bytes hash to the SHA-256 the scan recorded (when one is given)."""

    def __init__(self, paths: Sequence[Path], preprocess, draft_to: int | None = None,
                 sha256s: Sequence[str | None] | None = None):
        self.paths, self.preprocess, self.draft_to = list(paths), preprocess, draft_to
        self.sha256s = list(sha256s) if sha256s is not None else [None] * len(self.paths)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from idia.attack.inputs.photos import load_checked
        try:
            return i, self.preprocess(load_checked(Path(self.paths[i]), self.sha256s[i], self.draft_to)), None
        except Exception as e:  # reported by the encoder with the file's name; the scan already checked it
            return i, None, describe_failure(e)


def _collate(items):
    ok = [(i, x) for i, x, err in items if err is None]
    failed = [(i, err) for i, _, err in items if err is not None]
    pixels = torch.stack([x for _, x in ok]) if ok else None
    return [i for i, _ in ok], pixels, failed


def describe_failure(e: Exception) -> str:
    """A worker's failure as text (it crosses a process boundary); a changed photo is said as such."""
    from idia.attack.inputs.photos import PhotoChanged
    return f"{CHANGED}{e}" if isinstance(e, PhotoChanged) else f"{type(e).__name__}: {e}"


CHANGED = "changed: "


def decode_failure(path, err: str) -> InputError:
    if err.startswith(CHANGED):
        return InputError(f"{path}: {err[len(CHANGED):]}; rerun the attack on photos that stay as they are")
    return InputError(f"{path}: cannot be decoded any more ({err}); did it change after it was checked?")


@register
class LocalEngine:
    name = "local"

    def device_type(self, job: EncodingJob) -> str:
        return job.torch_device.type

    @torch.no_grad()
    def encode(self, job: EncodingJob, paths: Sequence[Path],
               sha256s: Sequence[str | None] | None = None) -> Iterator[tuple[list[int], np.ndarray]]:
        device = job.torch_device
        workers = job.workers if len(paths) > job.batch_size else 0  # a pool is not worth one batch
        loader = torch.utils.data.DataLoader(
            _Photos(paths, job.loaded.preprocess, job.draft_to, sha256s), batch_size=job.batch_size,
            num_workers=workers, collate_fn=_collate, pin_memory=device.type == "cuda",
            prefetch_factor=4 if workers else None, multiprocessing_context="fork" if workers else None)
        for positions, pixels, failed in loader:
            if failed:
                pos, err = failed[0]
                raise decode_failure(paths[pos], err)
            with autocast(device, job.precision):
                feats = job.loaded.model.encode_image(pixels.to(device, non_blocking=True))
            yield positions, torch.nn.functional.normalize(feats.float(), dim=-1).cpu().numpy()

    def describe(self) -> dict:
        return {"name": self.name}
