"""`idia convert`: read any format the registry knows, write open_clip's hub layout or a transformers CLIP folder,
so a model (a redacted one too) can go back in the format it came in."""

from __future__ import annotations

from pathlib import Path

from idia.errors import InputError

TARGETS = ("open_clip", "hf")


def convert_model(model: str, out: str | Path, to: str = "open_clip", checkpoint: str | None = None) -> Path:
    """Load `model` (checked and fitted like an audit's) and write it to `out` in the `to` layout; returns the
    weights file written."""
    from idia.attack.model.formats.hf import write_hf_folder
    from idia.attack.model.load import load_clip, save_hub_folder

    if to not in TARGETS:
        raise InputError(f"{to}: unknown target format (choose from {', '.join(TARGETS)})")
    loaded = load_clip(model, checkpoint)
    pcfg = {k: v for k, v in loaded.preprocess_cfg.items() if k != "size"}
    if to == "hf":
        return write_hf_folder(loaded.model.state_dict(), loaded.model_cfg, pcfg, out)
    return save_hub_folder(loaded.model, loaded.model_cfg, pcfg, out)
