"""The one model loader: an open_clip CLIP from local files only, without running code from the checkpoint.

Accepted forms of `model`:
  * an open_clip architecture name (``ViT-B-32``) with ``checkpoint=FILE`` (.safetensors, .pt, .pth, .bin);
  * a folder in open_clip's hub layout (``open_clip_config.json`` + ``open_clip_model.safetensors`` or
    ``open_clip_pytorch_model.bin``), optionally written ``local-dir:FOLDER``;
  * a JSON architecture config file (a bare model config or the hub layout's ``{"model_cfg": ...}``) with
    ``checkpoint=FILE``.
Download tags and ``hf-hub:`` names are refused: an audit must say exactly which bytes it examined.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

# An audit never reaches a hub, even if some library underneath would like to.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import open_clip  # noqa: E402
import torch  # noqa: E402
from open_clip.transform import PreprocessCfg, image_transform_v2  # noqa: E402

from .errors import InputError  # noqa: E402
from .io import canonical_json, sha256_file, sha256_text  # noqa: E402

HUB_CONFIG = "open_clip_config.json"
HUB_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors",
               "open_clip_pytorch_model.bin", "open_clip_pytorch_model.pth")
CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")


@dataclass
class LoadedModel:
    """A CLIP ready to encode, and everything an audit must record about where it came from."""

    model: torch.nn.Module
    preprocess: Callable
    tokenizer: Callable
    source: str  # what the user asked for
    checkpoint: str | None
    checkpoint_sha256: str | None
    model_cfg: dict
    preprocess_cfg: dict
    # What image embeddings depend on; by default the whole model's identity. A defense that changes only the text
    # tower (name redaction) passes its source's, so the same photos need not be encoded again.
    image_identity: str | None = None
    init_sha256: str | None = None  # a randomly initialised model's weights (it has no checkpoint to name it)
    config_sha256: str = field(init=False)

    def __post_init__(self):
        self.config_sha256 = sha256_text(canonical_json({"model_cfg": self.model_cfg,
                                                         "preprocess_cfg": self.preprocess_cfg}))
        if self.image_identity is None:
            self.image_identity = self.identity

    @property
    def context_length(self) -> int:
        return int(self.model_cfg["text_cfg"].get("context_length", 77))

    @property
    def identity(self) -> str:
        """What a cache key must depend on: the weights' bytes (a checkpoint's, or a random initialisation's)."""
        return self.checkpoint_sha256 or f"random-init:{self.init_sha256 or self.config_sha256}"

    def describe(self) -> dict:
        return {"source": self.source, "checkpoint": self.checkpoint, "checkpoint_sha256": self.checkpoint_sha256,
                "config_sha256": self.config_sha256, "model_cfg": self.model_cfg,
                "preprocess_cfg": self.preprocess_cfg}


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not a valid JSON architecture config ({e})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: not a JSON architecture config (expected an object)")
    return data


def _split_config(data: dict, path: Path) -> tuple[dict, dict]:
    """(model_cfg, preprocess_cfg) from a hub-layout config or a bare architecture config."""
    model_cfg = data.get("model_cfg", data)
    if not isinstance(model_cfg, dict) or "vision_cfg" not in model_cfg or "text_cfg" not in model_cfg:
        raise InputError(f"{path}: not an open_clip architecture config (needs 'vision_cfg' and 'text_cfg')")
    return copy.deepcopy(model_cfg), dict(data.get("preprocess_cfg", {}))


def resolve(model: str, checkpoint: str | None = None, allow_random: bool = False) -> tuple[dict, dict, Path | None, str]:
    """Work out (model_cfg, preprocess_cfg, checkpoint file, source) without loading any weights."""
    model = str(model)
    if model.startswith("hf-hub:"):
        raise InputError(f"{model}: hf-hub models are downloaded at load time; idia works offline. "
                         "Download the files yourself and pass the folder (open_clip hub layout).")
    if model.startswith("local-dir:"):
        model = model[len("local-dir:"):]
        if not Path(model).is_dir():
            raise InputError(f"{model}: no such model folder")
    path = Path(model)
    if path.is_dir():
        config_file = path / HUB_CONFIG
        if not config_file.is_file():
            raise InputError(f"{path}: not an open_clip model folder (no {HUB_CONFIG})")
        model_cfg, preprocess_cfg = _split_config(_read_json(config_file), config_file)
        if checkpoint is None:
            found = [path / n for n in HUB_WEIGHTS if (path / n).is_file()]
            if not found:
                raise InputError(f"{path}: no weights in the folder (expected one of {', '.join(HUB_WEIGHTS)})")
            checkpoint = str(found[0])
    elif path.suffix == ".json":
        if not path.is_file():
            raise InputError(f"{path}: no such architecture config file")
        model_cfg, preprocess_cfg = _split_config(_read_json(path), path)
    else:
        if path.exists() and path.suffix in CHECKPOINT_SUFFIXES:
            raise InputError(f"{path}: a checkpoint file was given as --model; pass the architecture name "
                             f"(e.g. ViT-B-32) as --model and this file as --checkpoint")
        model_cfg = open_clip.get_model_config(model.replace("/", "-"))
        if model_cfg is None:
            raise InputError(f"{model}: neither a local file or folder nor a known open_clip architecture "
                             "(see `open_clip.list_models()`)")
        model_cfg, preprocess_cfg = copy.deepcopy(model_cfg), {}
    if checkpoint is None:
        if not allow_random:
            raise InputError(f"{model}: no checkpoint given (pass --checkpoint FILE with the weights)")
        return model_cfg, preprocess_cfg, None, str(model)
    ckpt = Path(checkpoint)
    if not ckpt.exists():
        if open_clip.get_pretrained_cfg(model.replace("/", "-"), str(checkpoint)):
            raise InputError(f"{checkpoint}: an open_clip download tag; idia works offline, so pass a local "
                             "checkpoint file instead")
        raise InputError(f"{checkpoint}: no such checkpoint file")
    if ckpt.is_dir():
        raise InputError(f"{checkpoint}: is a folder; pass it as --model (open_clip hub layout) or name the file")
    return model_cfg, preprocess_cfg, ckpt, str(model)


def instantiate(model_cfg: dict) -> torch.nn.Module:
    """An untrained model of the given architecture, built the way open_clip builds it."""
    cfg = copy.deepcopy(model_cfg)
    if "hf_model_name" in cfg.get("text_cfg", {}) or "timm_model_name" in cfg.get("vision_cfg", {}):
        if cfg.get("text_cfg", {}).get("hf_model_pretrained") or cfg.get("vision_cfg", {}).get("timm_model_pretrained"):
            raise InputError("architecture asks for pretrained tower weights from a hub; idia works offline")
        cfg.get("vision_cfg", {}).setdefault("timm_model_pretrained", False)
        cfg.get("text_cfg", {}).setdefault("hf_model_pretrained", False)
    custom_text = cfg.pop("custom_text", False) or "hf_model_name" in cfg.get("text_cfg", {})
    if custom_text:
        cls = open_clip.CoCa if "multimodal_cfg" in cfg else open_clip.CustomTextCLIP
    else:
        cls = open_clip.CLIP
    try:
        return cls(**cfg)
    except Exception as e:  # a config that does not describe a buildable model
        raise InputError(f"architecture config cannot be built: {type(e).__name__}: {e}") from None


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a checkpoint file; pickles are read with weights_only=True, so no code runs."""
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            state = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as e:
            raise InputError(f"{path}: not a readable safetensors checkpoint ({e})") from None
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
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{path}: not a checkpoint (expected a mapping of tensor names to tensors)")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _unpickler_detail(message: str) -> str:
    """The one informative line of torch's weights_only error."""
    import re
    m = re.search(r"Unsupported global: GLOBAL (\S+)", message)
    if m:
        return f"it imports {m.group(1)}"
    m = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n|$)", message.replace("\n\n", "\n"))
    if m and m.group(1).strip():
        return m.group(1).strip()
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    return lines[-1] if lines else "unreadable"


def _fit_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """Load strictly, naming the first keys that do not fit (missing, unexpected, wrong shape)."""
    expected = model.state_dict()
    state = dict(state)
    if "logit_scale" in state and state["logit_scale"].shape != expected["logit_scale"].shape:
        state["logit_scale"] = state["logit_scale"].reshape(expected["logit_scale"].shape)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
             if k in state and state[k].shape != v.shape]
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing[:3])}" + (f" (+{len(missing) - 3} more)" if len(missing) > 3 else ""))
    if unexpected:
        problems.append(f"unexpected {', '.join(unexpected[:3])}"
                        + (f" (+{len(unexpected) - 3} more)" if len(unexpected) > 3 else ""))
    if wrong:
        problems.append(f"shape mismatch {', '.join(wrong[:3])}" + (f" (+{len(wrong) - 3} more)" if len(wrong) > 3 else ""))
    if problems:
        raise InputError(f"{path}: the state dict does not fit the architecture: {'; '.join(problems)}")
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)


def make_tokenizer(model_cfg: dict, model_name: str | None = None) -> Callable:
    text_cfg = model_cfg.get("text_cfg", {})
    if "hf_tokenizer_name" in text_cfg:
        raise InputError(f"{model_name or 'model'}: its tokenizer ({text_cfg['hf_tokenizer_name']}) would be "
                         "downloaded from a hub; idia works offline")
    return open_clip.tokenizer.SimpleTokenizer(context_length=int(text_cfg.get("context_length", 77)))


def load_clip(model: str, checkpoint: str | None = None, allow_random: bool = False,
              device: str | torch.device = "cpu") -> LoadedModel:
    """Load a CLIP for auditing: eval mode, fp32, with its preprocessing, tokenizer and checkpoint hash."""
    model_cfg, preprocess_cfg, ckpt, source = resolve(model, checkpoint, allow_random)
    tokenizer = make_tokenizer(model_cfg, source)
    net = instantiate(model_cfg)
    digest = init_digest = None
    if ckpt is not None:
        state = read_state_dict(ckpt)
        _fit_state_dict(net, state, ckpt)
        digest = sha256_file(ckpt)
    else:  # two random initialisations must not share cached embeddings
        import hashlib
        h = hashlib.sha256()
        for name, tensor in sorted(net.state_dict().items()):
            h.update(name.encode("utf-8"))
            h.update(tensor.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        init_digest = h.hexdigest()
    net = net.to(device).eval()
    size = net.visual.image_size if hasattr(net, "visual") else model_cfg["vision_cfg"]["image_size"]
    pcfg = {**preprocess_cfg, "size": size}
    preprocess = make_preprocess(pcfg, source)
    return LoadedModel(model=net, preprocess=preprocess, tokenizer=tokenizer, source=source,
                       checkpoint=str(ckpt) if ckpt else None, checkpoint_sha256=digest, init_sha256=init_digest,
                       model_cfg=model_cfg, preprocess_cfg=_jsonable(pcfg))


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


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def save_hub_folder(model: torch.nn.Module, model_cfg: dict, preprocess_cfg: dict, out: str | Path,
                    dtype: torch.dtype = torch.float32) -> Path:
    """Write a model in open_clip's hub layout (safetensors), readable by `load_clip` and by open_clip."""
    from safetensors.torch import save as st_save

    from .io import atomic_write_bytes, atomic_write_json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
               for k, v in model.state_dict().items()}
    atomic_write_bytes(out / HUB_WEIGHTS[0], st_save(tensors))
    pcfg = {k: v for k, v in preprocess_cfg.items() if k != "size"}
    atomic_write_json(out / HUB_CONFIG, {"model_cfg": model_cfg, "preprocess_cfg": pcfg})
    return out / HUB_WEIGHTS[0]
