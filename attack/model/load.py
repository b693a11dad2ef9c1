"""The one model loader: an open_clip CLIP from local files only, without running code from the checkpoint.

`resolve` asks the format registry (`idia.attack.model.formats`) who recognises the model string: a transformers CLIP folder,
an OpenAI TorchScript `.pt` archive, or open_clip's own forms (an architecture name or JSON config with
``checkpoint=FILE``, a hub-layout folder, ``local-dir:FOLDER``); training checkpoints (``epoch_N.pt``) load as
checkpoints. `load_clip` then checks the config against the weights' shapes on the meta device before it builds
anything. Download tags and ``hf-hub:`` names are refused: an audit must say exactly which bytes it examined.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import open_clip
import torch

from idia.attack.model.adapter import LoadedModel
from idia.attack.model.formats import ResolvedModel, detect
from idia.attack.model.formats.openclip_hub import HUB_CONFIG, HUB_WEIGHTS
from idia.attack.model.preprocess import make_preprocess
from idia.attack.model.tokenizer import make_tokenizer
from idia.errors import InputError
from idia.io import check_regular_file, sha256_file


def resolve(model: str, checkpoint: str | None = None, allow_random: bool = False) -> ResolvedModel:
    """Work out what `model` (and `checkpoint`) name, through the format registry, without reading weights."""
    model = str(model)
    if model.startswith("hf-hub:"):
        raise InputError(f"{model}: hf-hub models are downloaded at load time; idia works offline. "
                         "Download the files yourself and pass the folder (Hugging Face or open_clip hub layout).")
    # Before any format sniffs a file: a FIFO would hang the sniffing, a device (/dev/zero) would be read forever.
    check_regular_file(model.removeprefix("local-dir:"), "model file")
    if checkpoint is not None:
        check_regular_file(checkpoint, "checkpoint")
    resolved = detect(model, checkpoint).resolve(model, checkpoint, allow_random)
    for path in [resolved.checkpoint, *resolved.files]:
        if path is not None:
            check_regular_file(path, "model file")
    return resolved


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


def _mismatches(expected: dict[str, tuple[int, ...]], shapes: dict[str, tuple[int, ...]]) -> list[str]:
    """The first keys that do not fit, by kind (missing, unexpected, wrong shape)."""
    missing = [k for k in expected if k not in shapes]
    unexpected = [k for k in shapes if k not in expected]
    wrong = [f"{k} {tuple(shapes[k])} vs {tuple(v)}" for k, v in expected.items()
             if k in shapes and tuple(shapes[k]) != tuple(v)
             and not (k == "logit_scale" and math.prod(shapes[k]) == math.prod(v) == 1)]
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", wrong)):
        if items:
            problems.append(f"{label} {', '.join(items[:3])}" + (f" (+{len(items) - 3} more)" if len(items) > 3 else ""))
    return problems


def check_shapes(model_cfg: dict, shapes: dict[str, tuple[int, ...]], path: Path | str) -> None:
    """Compare a config with the weights' shapes on the meta device, before anything is allocated: a hostile or
    mistaken config (a 64-layer, 8,192-wide tower beside small weights) fails here in a second."""
    with torch.device("meta"):
        skeleton = instantiate(model_cfg)
    problems = _mismatches({k: tuple(v.shape) for k, v in skeleton.state_dict().items()}, shapes)
    if problems:
        raise InputError(f"{path}: the state dict does not fit the architecture: {'; '.join(problems)}")


def _fit_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """Load strictly, naming the first keys that do not fit (missing, unexpected, wrong shape)."""
    expected = model.state_dict()
    problems = _mismatches({k: tuple(v.shape) for k, v in expected.items()}, {k: tuple(v.shape) for k, v in state.items()})
    if problems:
        raise InputError(f"{path}: the state dict does not fit the architecture: {'; '.join(problems)}")
    model.load_state_dict({k: v.reshape(expected[k].shape).to(expected[k].dtype) for k, v in state.items()}, strict=True)


def load_clip(model: str, checkpoint: str | None = None, allow_random: bool = False,
              device: str | torch.device = "cpu") -> LoadedModel:
    """Load a CLIP for auditing: eval mode, fp32, with its preprocessing, tokenizer and checkpoint hash."""
    r = resolve(model, checkpoint, allow_random)
    model_cfg, preprocess_cfg, ckpt = r.model_cfg, r.preprocess_cfg, r.checkpoint
    tokenizer = r.make_tokenizer() if r.make_tokenizer else make_tokenizer(model_cfg, r.source)
    if r.read_shapes is not None:
        check_shapes(model_cfg, r.read_shapes(), ckpt)
    net = instantiate(model_cfg)
    digest = init_digest = None
    if r.read_state is not None:
        _fit_state_dict(net, r.read_state(), ckpt)
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
    preprocess = make_preprocess(pcfg, r.source)
    return LoadedModel(model=net, preprocess=preprocess, tokenizer=tokenizer, source=r.source,
                       checkpoint=str(ckpt) if ckpt else None, checkpoint_sha256=digest, init_sha256=init_digest,
                       model_cfg=model_cfg, preprocess_cfg=_jsonable(pcfg), source_format=r.source_format)


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

    from idia.io import atomic_write_bytes, atomic_write_json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
               for k, v in model.state_dict().items()}
    atomic_write_bytes(out / HUB_WEIGHTS[0], st_save(tensors))
    pcfg = {k: v for k, v in preprocess_cfg.items() if k != "size"}
    atomic_write_json(out / HUB_CONFIG, {"model_cfg": model_cfg, "preprocess_cfg": pcfg})
    return out / HUB_WEIGHTS[0]
