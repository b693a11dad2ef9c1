"""What the trained defenses share, in scikit-learn's manner: parameters read back from `__init__`'s signature,
named presets of them (`--preset authors`), and the fitted student as a model to attack."""

from __future__ import annotations

import inspect
from pathlib import Path

from idia.defense.training import DRIFT_NORMS
from idia.errors import InputError


class PresetEstimator:
    """`__init__` only stores; `get_params` reads them back; `from_preset` starts from a named preset."""

    PRESETS: dict[str, dict] = {}
    RECORD_FILE = "redaction.json"  # the record `save` writes beside the model

    @classmethod
    def from_preset(cls, preset: str | None, **params):
        """The preset's settings (see the class's PRESETS), with `params` on top."""
        if preset is not None and preset not in cls.PRESETS:
            raise InputError(f"--preset must be one of {', '.join(cls.PRESETS)}, got {preset!r}")
        return cls(**{**(cls.PRESETS[preset] if preset else {}), **params})

    def _check_training(self, *batch_sizes: int) -> None:
        """The checks both redactors share: steps and batch sizes, learning rate, drift norm."""
        if self.steps < 1 or min(batch_sizes) < 1:
            raise InputError("steps and batch sizes must be at least 1")
        if not self.lr > 0:
            raise InputError(f"the learning rate must be positive, got {self.lr}")
        if self.drift_norm not in DRIFT_NORMS:
            raise InputError(f"drift_norm must be one of {', '.join(DRIFT_NORMS)}, got {self.drift_norm!r}")

    def _check_fitted(self) -> None:
        if not hasattr(self, "student_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted yet: call fit() first")

    def _defended_model(self, what: str, image_identity: str | None):
        """The fine-tuned student as a model to attack, named after its source and what was done to it."""
        from idia.attack.model.adapter import LoadedModel
        self._check_fitted()
        src = self.source_
        return LoadedModel(model=self.student_, preprocess=src.preprocess, tokenizer=src.tokenizer,
                           source=f"{src.source} ({what})", checkpoint=None,
                           checkpoint_sha256=self.checkpoint_sha256_after_, model_cfg=src.model_cfg,
                           preprocess_cfg=src.preprocess_cfg, image_identity=image_identity)

    def save(self, out_dir: str | Path, command: str | None = None) -> Path:
        """The defended model in open_clip's hub layout (float32 safetensors) and its record beside it."""
        import torch

        from idia.attack.model.formats.openclip_hub import HUB_WEIGHTS
        from idia.attack.model.load import save_hub_folder
        from idia.io import atomic_write_json, sha256_file
        from idia.manifest import build_manifest
        self._check_fitted()
        out = Path(out_dir)
        src = self.source_
        weights = save_hub_folder(self.student_, src.model_cfg, src.preprocess_cfg, out, dtype=torch.float32)
        if sha256_file(weights) != self.checkpoint_sha256_after_:  # the in-memory identity would lie about the file
            raise RuntimeError(f"{weights}: written checkpoint hash differs from the in-memory model's")
        record = self.record()
        record["manifest"] = build_manifest(self.seed, {
            "checkpoint": {"path": src.checkpoint, "sha256": src.checkpoint_sha256},
            "model_config_sha256": src.config_sha256, "names": self.names_}, command)
        record["checkpoint"] = HUB_WEIGHTS[0]
        atomic_write_json(out / self.RECORD_FILE, record)
        return out

    def get_params(self) -> dict:
        params = {k: getattr(self, k) for k in inspect.signature(type(self).__init__).parameters if k != "self"}
        params["lr_milestones"] = list(params["lr_milestones"])
        return params
