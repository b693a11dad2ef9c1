"""The synthetic identity world: made-up people, a tiny CLIP trained on some of them, fresh photos of all.

Shared by the demo, the tests and the benchmarks; ground truth is known, so every claim can be measured. The
entry points below are re-exported lazily: `import idia.world` loads nothing heavy until one of them is used.
"""

import importlib

_EXPORTS = {"World": "world", "WorldSpec": "world", "make_world": "world", "write_photos": "world",
            "build_world_model": "build", "load_world": "build", "read_world_record": "build",
            "shipped_model_dir": "build"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
