"""What the trained defenses share, in scikit-learn's manner: parameters read back from `__init__`'s signature,
named presets of them (`--preset authors`), and the fitted student as a model to attack."""

from __future__ import annotations

import inspect

from attack.errors import InputError


class PresetEstimator:
    """`__init__` only stores; `get_params` reads them back; `from_preset` starts from a named preset."""

    PRESETS: dict[str, dict] = {}

    @classmethod
    def from_preset(cls, preset: str | None, **params):
        """The preset's settings (see the class's PRESETS), with `params` on top."""
        if preset is not None and preset not in cls.PRESETS:
            raise InputError(f"--preset must be one of {', '.join(cls.PRESETS)}, got {preset!r}")
        return cls(**{**(cls.PRESETS[preset] if preset else {}), **params})

    def _check_fitted(self) -> None:
        if not hasattr(self, "student_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted yet: call fit() first")

    def _defended_model(self, what: str, image_identity: str | None):
        """The fine-tuned student as a model to attack, named after its source and what was done to it."""
        from attack.models import LoadedModel
        self._check_fitted()
        src = self.source_
        return LoadedModel(model=self.student_, preprocess=src.preprocess, tokenizer=src.tokenizer,
                           source=f"{src.source} ({what})", checkpoint=None,
                           checkpoint_sha256=self.checkpoint_sha256_after_, model_cfg=src.model_cfg,
                           preprocess_cfg=src.preprocess_cfg, image_identity=image_identity)

    def get_params(self) -> dict:
        params = {k: getattr(self, k) for k in inspect.signature(type(self).__init__).parameters if k != "self"}
        params["lr_milestones"] = list(params["lr_milestones"])
        return params
