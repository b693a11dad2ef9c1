"""The one model loader: an open_clip CLIP from local files only, without running code from the checkpoint.

`resolve` asks the format registry (`attack.formats`) who recognises the model string: a transformers CLIP folder,
an OpenAI TorchScript `.pt` archive, or open_clip's own forms (an architecture name or JSON config with
``checkpoint=FILE``, a hub-layout folder, ``local-dir:FOLDER``); training checkpoints (``epoch_N.pt``) load as
checkpoints. `load_clip` then checks the config against the weights' shapes on the meta device before it builds
anything. Download tags and ``hf-hub:`` names are refused: an audit must say exactly which bytes it examined.
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

# An audit never reaches a hub, even if some library underneath would like to.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import open_clip  # noqa: E402
import torch  # noqa: E402
from open_clip.transform import PreprocessCfg, image_transform_v2  # noqa: E402

from idia.errors import InputError  # noqa: E402
from idia.io import canonical_json, sha256_file, sha256_text  # noqa: E402

from idia.attack.model.formats import ResolvedModel, detect  # noqa: E402
from idia.attack.model.formats.openclip_hub import CHECKPOINT_SUFFIXES, HUB_CONFIG, HUB_WEIGHTS  # noqa: E402,F401
from idia.attack.model.formats.statedict import read_state_dict  # noqa: E402,F401  (re-exported: tests and tools read through it)


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
    source_format: str = "open_clip"  # the format it was read from (attack.formats), so it can be written back
    config_sha256: str = field(init=False)

    def __post_init__(self):
        self.config_sha256 = sha256_text(canonical_json({"model_cfg": self.model_cfg,
                                                         "preprocess_cfg": self.preprocess_cfg}))
        if self.image_identity is None:
            self.image_identity = self.identity

    @property
    def context_length(self) -> int:
        return int(self.model_cfg["text_cfg"].get("context_length", 77))

    def tower_parameter_names(self, tower: str, model: torch.nn.Module | None = None) -> list[str]:
        """The parameters of one tower ("image" or "text") of this model (or of a copy of it, `model`): what the
        defenses fine-tune. The one place that knows open_clip's naming (every format is loaded into it)."""
        return tower_parameter_names(model if model is not None else self.model, tower)

    @property
    def embed_dim(self) -> int:
        return int(self.model_cfg["embed_dim"])

    @property
    def logit_scale(self) -> float:
        """The temperature the model was trained with (exp of its learned log scale)."""
        return float(self.model.logit_scale.exp().item())

    @property
    def identity(self) -> str:
        """What a cache key must depend on: the weights' bytes (a checkpoint's, or a random initialisation's)."""
        return self.checkpoint_sha256 or f"random-init:{self.init_sha256 or self.config_sha256}"

    def describe(self) -> dict:
        return {"source": self.source, "source_format": self.source_format,
                "checkpoint": self.checkpoint, "checkpoint_sha256": self.checkpoint_sha256,
                "config_sha256": self.config_sha256, "model_cfg": self.model_cfg,
                "preprocess_cfg": self.preprocess_cfg}


def tower_parameter_names(model: torch.nn.Module, tower: str) -> list[str]:
    """open_clip's image tower is `visual.*`; the text tower is everything else but the logit scale and bias."""
    if tower not in ("image", "text"):
        raise ValueError(f"tower must be 'image' or 'text', got {tower!r}")
    if tower == "image":
        return [n for n, _ in model.named_parameters() if n.startswith("visual.")]
    return [n for n, _ in model.named_parameters()
            if not n.startswith("visual.") and n not in ("logit_scale", "logit_bias")]


def resolve(model: str, checkpoint: str | None = None, allow_random: bool = False) -> ResolvedModel:
    """Work out what `model` (and `checkpoint`) name, through the format registry, without reading weights."""
    model = str(model)
    if model.startswith("hf-hub:"):
        raise InputError(f"{model}: hf-hub models are downloaded at load time; idia works offline. "
                         "Download the files yourself and pass the folder (Hugging Face or open_clip hub layout).")
    return detect(model, checkpoint).resolve(model, checkpoint, allow_random)


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


def make_tokenizer(model_cfg: dict, model_name: str | None = None, folder: str | Path | None = None) -> Callable:
    """open_clip's CLIP BPE tokenizer, or the Hugging Face tokenizer a config names when its files are in `folder`
    (read with local_files_only: nothing is downloaded)."""
    text_cfg = model_cfg.get("text_cfg", {})
    context_length = int(text_cfg.get("context_length", 77))
    if "hf_tokenizer_name" in text_cfg:
        from idia.attack.model.formats.hf import TOKENIZER_FILES, hf_tokenizer
        if folder is None or not any((Path(folder) / n).is_file() for n in TOKENIZER_FILES):
            raise InputError(f"{model_name or 'model'}: its tokenizer ({text_cfg['hf_tokenizer_name']}) is not in "
                             f"the model folder ({', '.join(TOKENIZER_FILES)}) and idia does not download it")
        return hf_tokenizer(Path(folder), text_cfg, context_length)
    return open_clip.tokenizer.SimpleTokenizer(context_length=context_length)


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

    from idia.io import atomic_write_bytes, atomic_write_json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
               for k, v in model.state_dict().items()}
    atomic_write_bytes(out / HUB_WEIGHTS[0], st_save(tensors))
    pcfg = {k: v for k, v in preprocess_cfg.items() if k != "size"}
    atomic_write_json(out / HUB_CONFIG, {"model_cfg": model_cfg, "preprocess_cfg": pcfg})
    return out / HUB_WEIGHTS[0]
