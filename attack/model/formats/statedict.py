"""The generic state-dict reader: safetensors, weights-only pickles, open_clip training checkpoints and
TorchScript archives (read without running them), each with a cheap way to learn the tensors' shapes first."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch

from idia.attack.model.formats.torchscript import is_torchscript
from idia.errors import InputError

# Tensors an archive may carry that are derived from the architecture, not learned (OpenAI's JIT models store them).


class LazyState:
    """A checkpoint's tensors, read once on first use; shapes from the header where the format has one."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._state: dict[str, torch.Tensor] | None = None

    def shapes(self) -> dict[str, tuple[int, ...]]:
        if self._state is None and self.path.suffix == ".safetensors":
            from safetensors import SafetensorError, safe_open
            try:
                with safe_open(str(self.path), framework="pt", device="cpu") as f:
                    return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
            except (SafetensorError, OSError, ValueError) as e:
                raise InputError(f"{self.path}: not a readable safetensors checkpoint ({e})") from None
        if self._state is None and is_torchscript(self.path):
            from idia.attack.model.formats.torchscript import read_archive_records
            return {k: r.shape for k, r in read_archive_records(self.path).items()}
        return {k: tuple(v.shape) for k, v in self.state().items()}

    def state(self) -> dict[str, torch.Tensor]:
        if self._state is None:
            self._state = read_state_dict(self.path)
        return self._state


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a checkpoint file; pickles are read with weights_only=True and TorchScript archives by a
    restricted unpickler, so no code from the file runs."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            state = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as e:
            raise InputError(f"{path}: not a readable safetensors checkpoint ({e})") from None
    elif is_torchscript(path):
        from idia.attack.model.formats.torchscript import read_archive
        return read_archive(path)
    else:
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            detail = _unpickler_detail(str(e))
            if "Unsupported global" in str(e):
                raise InputError(f"{path}: refused: this pickle would need to run code to load "
                                 f"(weights_only=True): {detail}") from None
            raise InputError(f"{path}: not a checkpoint (unpickling failed: {detail})") from None
        except Exception as e:  # noqa: BLE001 -- garbage bytes fail inside the unpickler in any way (KeyError, ...)
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise InputError(f"{path}: not a checkpoint ({type(e).__name__}{': ' + first if first else ''})") from None
    # An open_clip training checkpoint (epoch_N.pt): the weights sit under 'state_dict' beside the optimizer,
    # epoch and name, which an audit does not need.
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{path}: not a checkpoint (expected a mapping of tensor names to tensors)")
    if all(k.startswith("module.") for k in state):  # saved from a DistributedDataParallel wrapper
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _unpickler_detail(message: str) -> str:
    """The one informative line of torch's weights_only error."""
    m = re.search(r"Unsupported global: GLOBAL (\S+)", message)
    if m:
        return f"it imports {m.group(1)}"
    m = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n|$)", message.replace("\n\n", "\n"))
    if m and m.group(1).strip():
        return m.group(1).strip()
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    return lines[-1] if lines else "unreadable"
