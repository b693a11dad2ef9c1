"""The runtime facts every manifest records: what besides the inputs decides the numbers.

Library builds, thread counts (training reduces in a thread-count-dependent order; see docs/ARCHITECTURE.md,
Reproducibility), the device and the arithmetic. One builder, used by attacks, defenses, audits and the world;
torch is imported when the facts are asked for, never when this module is.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata

THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_THREADING_LAYER",
              "CUBLAS_WORKSPACE_CONFIG")


def library_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def runtime_facts(device=None, precision: str | None = None, engine: dict | None = None) -> dict:
    """Versions, threads, machine, device and precision. `device` is the torch device the model ran on (None:
    what this machine would use); `engine` describes who encoded the photos, when any were."""
    import numpy
    import torch
    cuda = torch.cuda.is_available()
    if device is None:
        device = torch.device("cuda" if cuda else "cpu")
    device = torch.device(device)
    facts = {
        "python": platform.python_version(), "platform": platform.platform(), "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__, "numpy": numpy.__version__, "open_clip": library_version("open-clip-torch"),
        "cuda": torch.version.cuda,
        "torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
        "thread_env": {k: os.environ[k] for k in THREAD_ENV if k in os.environ},
        "device": str(device),
        "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda" else
                        platform.processor() or platform.machine()),
        "precision": precision,
    }
    if engine is not None:
        facts["engine"] = engine
    return facts
