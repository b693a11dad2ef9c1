"""Where and in what arithmetic a model runs: `--device` and `--precision`."""

from __future__ import annotations

import contextlib

import torch

from idia.errors import InputError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """auto → CUDA when present, else CPU; an explicit device that is not there is one clear error."""
    spec = "auto" if spec is None else str(spec)
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"--device {spec}: no CUDA device is available on this machine (use --device cpu)")
        index = int(spec.split(":")[1]) if ":" in spec else 0
        if index >= torch.cuda.device_count():
            raise InputError(f"--device {spec}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        return torch.device(spec)
    if spec == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise InputError("--device mps: Apple's Metal backend is not available on this machine")
        return torch.device("mps")
    if spec == "cpu":
        return torch.device("cpu")
    raise InputError(f"--device must be auto, cpu, cuda, cuda:N or mps, got {spec!r}")


def autocast(device: torch.device, precision: str):
    """A context in which forward passes run in `precision` (fp32: no change). Weights stay fp32: autocast keeps
    the reductions that need it (layer norms, softmax) in fp32, as mixed-precision inference is normally run."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision not in DTYPES:
        raise InputError(f"--precision must be one of {', '.join(DTYPES)}, got {precision!r}")
    if device.type == "cpu" and precision == "fp16":
        # CPU fp16 autocast exists but is slow and rarely what anyone means; bf16 is the CPU's half precision.
        raise InputError("--precision fp16 needs a GPU; on the CPU use bf16")
    return torch.autocast(device_type=device.type, dtype=DTYPES[precision])
