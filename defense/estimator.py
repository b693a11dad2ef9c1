"""What the trained defenses share, in scikit-learn's manner: parameters read back from `__init__`'s signature,
and named presets of them (`--preset authors`)."""

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

    def get_params(self) -> dict:
        params = {k: getattr(self, k) for k in inspect.signature(type(self).__init__).parameters if k != "self"}
        params["lr_milestones"] = list(params["lr_milestones"])
        return params
