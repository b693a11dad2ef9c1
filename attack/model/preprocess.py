"""A model's image preprocessing: open_clip's eval transform, built from a checked `preprocess_cfg`."""

from __future__ import annotations

from typing import Callable

from open_clip.transform import PreprocessCfg, image_transform_v2

from idia.errors import InputError

INTERPOLATIONS = ("bicubic", "bilinear", "random")  # what open_clip accepts ("random": bicubic at eval)
RESIZE_MODES = ("shortest", "longest", "squash")


def make_preprocess(pcfg: dict, source: str) -> Callable:
    """open_clip's eval transform from a `preprocess_cfg`, its values checked first, so a bad one is one line
    naming the model instead of an assertion deep inside open_clip (or a failure at the first photo)."""
    def bad(key: str, why: str):
        raise InputError(f"{source}: preprocess_cfg.{key} {why}")

    def numbers(key: str):
        v = pcfg.get(key)
        if v is None:
            return
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            v = [v]
        if not isinstance(v, (list, tuple)) or len(v) not in (1, 3) or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
            bad(key, f"must be a list of 1 or 3 numbers, got {v!r}")
        if key == "std" and any(x <= 0 for x in v):
            bad(key, f"must be positive, got {v!r}")

    numbers("mean")
    numbers("std")
    if pcfg.get("interpolation") is not None and pcfg["interpolation"] not in INTERPOLATIONS:
        bad("interpolation", f"must be one of {', '.join(INTERPOLATIONS)}, got {pcfg['interpolation']!r}")
    if pcfg.get("resize_mode") is not None and pcfg["resize_mode"] not in RESIZE_MODES:
        bad("resize_mode", f"must be one of {', '.join(RESIZE_MODES)}, got {pcfg['resize_mode']!r}")
    size = pcfg.get("size")
    if not (isinstance(size, int) and not isinstance(size, bool) and size > 0) and not (
            isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(x, int) and x > 0 for x in size)):
        bad("size", f"must be a positive whole number or two of them, got {size!r}")
    known = set(PreprocessCfg.__dataclass_fields__)
    try:
        return image_transform_v2(PreprocessCfg(**{k: v for k, v in pcfg.items() if k in known}), is_train=False)
    except Exception as e:  # noqa: BLE001 -- whatever open_clip rejects, said in one line
        raise InputError(f"{source}: preprocess_cfg cannot be used ({type(e).__name__}: {e})") from None
