"""The one manifest builder: what anyone needs to reproduce a result and check it examined the same bytes."""

from __future__ import annotations

import platform
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from functools import cache
from pathlib import Path

from idia.runtime import library_version, runtime_facts

TOOL = "idia"
LIBRARIES = ("torch", "torchvision", "open-clip-torch", "numpy", "scikit-learn", "scipy", "pillow", "safetensors")


def utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def command_line(argv: list[str] | None = None) -> str:
    argv = list(sys.argv if argv is None else argv)
    if argv and argv[0].endswith(("idia", "__main__.py")):
        argv[0] = "idia"
    return shlex.join(argv)


@cache
def source_commit() -> str | None:
    """The git commit idia's own source is at when it runs from a checkout (an editable install), with "-dirty"
    when files differ from it; None for an installed wheel or without git. Asked once a process."""
    try:
        out = subprocess.run(["git", "-C", str(Path(__file__).resolve().parent), "describe", "--always", "--dirty",
                              "--abbrev=40", "--match=NO-TAGS"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def build_manifest(seed: int | None, inputs: dict, command: str | None = None, extra: dict | None = None,
                   runtime: dict | None = None) -> dict:
    """`inputs` maps a role (checkpoint, images, candidates, templates, ...) to hashes or lists of {file, sha256};
    `runtime` is `idia.runtime.runtime_facts(...)` of the run (default: this machine's, without a device)."""
    return {
        "tool": TOOL,
        "tool_version": library_version(TOOL) or "unknown",
        "tool_commit": source_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": {name: library_version(name) for name in LIBRARIES},
        "runtime": runtime if runtime is not None else runtime_facts(),
        "command": command if command is not None else command_line(),
        "seed": seed,
        "created_utc": utc_now(),
        "inputs": inputs,
        **(extra or {}),
    }


# Keys that change from run to run without the result changing; comparisons of reruns ignore them.
VOLATILE_KEYS = ("created_utc", "command", "timings", "runtime")
