"""The one manifest builder: what anyone needs to reproduce a result and check it examined the same bytes."""

from __future__ import annotations

import os
import platform
import shlex
import sys
from datetime import datetime, timezone
from importlib import metadata

TOOL = "idia"
LIBRARIES = ("torch", "torchvision", "open-clip-torch", "numpy", "scikit-learn", "scipy", "pillow", "safetensors")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def command_line(argv: list[str] | None = None) -> str:
    argv = list(sys.argv if argv is None else argv)
    if argv and argv[0].endswith(("idia", "__main__.py")):
        argv[0] = "idia"
    return shlex.join(argv)


THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_THREADING_LAYER",
              "CUBLAS_WORKSPACE_CONFIG")


def runtime() -> dict:
    """What floating-point results can depend on besides the inputs: library builds, thread counts, device.
    (Training reduces in a thread-count-dependent order; see docs/ARCHITECTURE.md, Reproducibility.)"""
    import numpy
    import torch
    try:
        import open_clip
        open_clip_version = getattr(open_clip, "__version__", None) or _version("open-clip-torch")
    except ImportError:  # pragma: no cover - a dependency
        open_clip_version = None
    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__, "numpy": numpy.__version__, "open_clip": open_clip_version,
        "torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
        "thread_env": {k: os.environ[k] for k in THREAD_ENV if k in os.environ},
        "platform": platform.platform(), "machine": platform.machine(),
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "cpu_count": os.cpu_count(),
    }


def build_manifest(seed: int | None, inputs: dict, command: str | None = None, extra: dict | None = None) -> dict:
    """`inputs` maps a role (checkpoint, images, candidates, templates, ...) to hashes or lists of {file, sha256}."""
    return {
        "tool": TOOL,
        "tool_version": _version(TOOL) or "unknown",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": {name: _version(name) for name in LIBRARIES},
        "runtime": runtime(),
        "command": command if command is not None else command_line(),
        "seed": seed,
        "created_utc": utc_now(),
        "inputs": inputs,
        **(extra or {}),
    }


# Keys that change from run to run without the result changing; comparisons of reruns ignore them.
VOLATILE_KEYS = ("created_utc", "command", "timings", "runtime")
