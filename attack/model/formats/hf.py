"""Hugging Face `transformers` CLIP folders (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``),
read into open_clip's CLIP and written back.

The mapping is exact: transformers' CLIP and open_clip's CLIP compute the same function (pre-norm blocks, a class
token pooled after the final norm, bias-free projections, the text tower pooled at the end-of-text token), so every
tensor has one counterpart; only q/k/v are concatenated into one in-projection and the projections are transposed.
Both libraries default to a layer-norm eps of 1e-5; a folder with another eps gets it through ``norm_kwargs``.
transformers is not needed to read or write these folders; it is only the tests' reference.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from idia.attack.model.formats import ResolvedModel, register
from idia.attack.model.formats.openclip_hub import read_json
from idia.attack.model.formats.statedict import LazyState
from idia.attack.model.tokenizer import STANDARD_VOCAB, check_tokenizer
from idia.errors import InputError
from idia.io import read_text_file

CONFIG = "config.json"
WEIGHTS = ("model.safetensors", "pytorch_model.bin")
PREPROCESSOR = "preprocessor_config.json"
IGNORED = ("text_model.embeddings.position_ids", "vision_model.embeddings.position_ids")

# transformers' CLIPTextConfig / CLIPVisionConfig defaults: save_pretrained leaves out values equal to them.
TEXT_DEFAULTS = {"hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12, "num_attention_heads": 8,
                 "max_position_embeddings": 77, "vocab_size": STANDARD_VOCAB, "hidden_act": "quick_gelu",
                 "layer_norm_eps": 1e-5, "eos_token_id": 49407, "bos_token_id": 49406, "pad_token_id": 1}
VISION_DEFAULTS = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
                   "image_size": 224, "patch_size": 32, "num_channels": 3, "hidden_act": "quick_gelu",
                   "layer_norm_eps": 1e-5}
# transformers' activation names -> (open_clip quick_gelu flag, act_kwargs for nn.GELU)
ACTIVATIONS = {"quick_gelu": (True, None), "gelu": (False, None),
               "gelu_pytorch_tanh": (False, {"approximate": "tanh"}), "gelu_new": (False, {"approximate": "tanh"})}
RESAMPLE = {2: "bilinear", 3: "bicubic"}  # PIL's codes in preprocessor_config.json


def _folder(model: str) -> Path:
    return Path(model[len("local-dir:"):] if model.startswith("local-dir:") else model)


# ---------------------------------------------------------------------------------------------------------------
# the tensor plan: open_clip name <- transformers names, and how

def _block_plan(hf: str, oc: str) -> list[tuple[str, list[str], str]]:
    plan = [(f"{oc}.attn.in_proj_{p}", [f"{hf}.self_attn.{x}_proj.{p}" for x in "qkv"], "cat")
            for p in ("weight", "bias")]
    for hf_part, oc_part in (("self_attn.out_proj", "attn.out_proj"), ("layer_norm1", "ln_1"),
                             ("layer_norm2", "ln_2"), ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj")):
        plan += [(f"{oc}.{oc_part}.{p}", [f"{hf}.{hf_part}.{p}"], "copy") for p in ("weight", "bias")]
    return plan


def tensor_plan(text_layers: int, vision_layers: int) -> list[tuple[str, list[str], str]]:
    """(open_clip key, transformers keys, op) for every tensor; op is copy, T (transpose) or cat (q, k, v)."""
    plan = [("logit_scale", ["logit_scale"], "copy"),
            ("token_embedding.weight", ["text_model.embeddings.token_embedding.weight"], "copy"),
            ("positional_embedding", ["text_model.embeddings.position_embedding.weight"], "copy"),
            ("ln_final.weight", ["text_model.final_layer_norm.weight"], "copy"),
            ("ln_final.bias", ["text_model.final_layer_norm.bias"], "copy"),
            ("text_projection", ["text_projection.weight"], "T"),
            ("visual.class_embedding", ["vision_model.embeddings.class_embedding"], "copy"),
            ("visual.conv1.weight", ["vision_model.embeddings.patch_embedding.weight"], "copy"),
            ("visual.positional_embedding", ["vision_model.embeddings.position_embedding.weight"], "copy"),
            ("visual.ln_pre.weight", ["vision_model.pre_layrnorm.weight"], "copy"),
            ("visual.ln_pre.bias", ["vision_model.pre_layrnorm.bias"], "copy"),
            ("visual.ln_post.weight", ["vision_model.post_layernorm.weight"], "copy"),
            ("visual.ln_post.bias", ["vision_model.post_layernorm.bias"], "copy"),
            ("visual.proj", ["visual_projection.weight"], "T")]
    for i in range(text_layers):
        plan += _block_plan(f"text_model.encoder.layers.{i}", f"transformer.resblocks.{i}")
    for i in range(vision_layers):
        plan += _block_plan(f"vision_model.encoder.layers.{i}", f"visual.transformer.resblocks.{i}")
    return plan


def _apply_shape(op, shapes):
    if op == "T":
        return tuple(reversed(shapes[0]))
    if op == "cat":
        return (sum(s[0] for s in shapes),) + tuple(shapes[0][1:])
    return tuple(shapes[0])


def _apply(op, tensors):
    if op == "T":
        return tensors[0].t().contiguous()
    if op == "cat":
        return torch.cat(tensors, dim=0)
    return tensors[0]


def hf_to_openclip(hf: dict[str, torch.Tensor], plan) -> dict[str, torch.Tensor]:
    """transformers tensors -> open_clip tensors, one plan entry each."""
    return {oc: _apply(op, [hf[n] for n in names]) for oc, names, op in plan}


def openclip_to_hf(state: dict[str, torch.Tensor], plan) -> dict[str, torch.Tensor]:
    """The inverse of `hf_to_openclip`: open_clip tensors -> transformers tensors."""
    out = {}
    for oc, names, op in plan:
        t = state[oc].detach().to("cpu")
        if op == "T":
            parts = [t.t()]
        elif op == "cat":
            parts = list(torch.chunk(t, len(names), dim=0))
        else:
            parts = [t.reshape(()) if oc == "logit_scale" else t]
        out.update({name: part.contiguous() for name, part in zip(names, parts)})
    return out


def _check_keys(plan, hf_keys, path: Path) -> None:
    needed = {k for _, names, _ in plan for k in names}
    missing = sorted(needed - set(hf_keys))
    extra = sorted(set(hf_keys) - needed - set(IGNORED))
    if extra:
        raise InputError(f"{path}: unsupported tensors for a CLIP: {', '.join(extra[:3])}"
                         + (f" (+{len(extra) - 3} more)" if len(extra) > 3 else ""))
    if missing:
        raise InputError(f"{path}: missing tensors: {', '.join(missing[:3])}"
                         + (f" (+{len(missing) - 3} more)" if len(missing) > 3 else ""))


# ---------------------------------------------------------------------------------------------------------------
# config and preprocessing

def _tower(cfg: dict, defaults: dict, which: str, path: Path) -> tuple[dict, bool]:
    """An open_clip tower config (without the type-specific fields) and whether it uses quick-GELU."""
    c = {**defaults, **{k: v for k, v in cfg.items() if v is not None}}
    act = c["hidden_act"]
    if act not in ACTIVATIONS:
        raise InputError(f"{path}: unsupported {which} activation {act!r} (supported: {', '.join(ACTIVATIONS)})")
    quick, act_kwargs = ACTIVATIONS[act]
    width, heads, inner = int(c["hidden_size"]), int(c["num_attention_heads"]), int(c["intermediate_size"])
    if width % heads:
        raise InputError(f"{path}: {which} hidden_size {width} is not divisible by its {heads} heads")
    ratio = inner / width
    if int(width * ratio) != inner:
        raise InputError(f"{path}: {which} intermediate_size {inner} cannot be expressed as a ratio of {width}")
    out = {"width": width, "layers": int(c["num_hidden_layers"]), "mlp_ratio": ratio}
    if act_kwargs:
        out["act_kwargs"] = dict(act_kwargs)
    if float(c["layer_norm_eps"]) != 1e-5:  # open_clip's LayerNorm uses torch's default, 1e-5
        out["norm_kwargs"] = {"eps": float(c["layer_norm_eps"])}
    return {**out, "_heads": heads, "_c": c}, quick


def hf_to_model_cfg(config: dict, path: Path) -> dict:
    """open_clip's model_cfg for a transformers CLIPConfig dictionary; one line for anything it cannot express."""
    mtype = config.get("model_type")
    if mtype != "clip":
        raise InputError(f"{path}: a Hugging Face {mtype or 'unknown'} model; idia reads transformers CLIP folders "
                         "(model_type 'clip') only")
    text, tq = _tower(config.get("text_config") or {}, TEXT_DEFAULTS, "text", path)
    vision, vq = _tower(config.get("vision_config") or {}, VISION_DEFAULTS, "vision", path)
    if tq != vq:
        raise InputError(f"{path}: unsupported: one tower uses quick_gelu and the other does not "
                         "(open_clip's CLIP sets it for both)")
    tc, vc = text.pop("_c"), vision.pop("_c")
    text["heads"] = text.pop("_heads")
    vision["head_width"] = vision["width"] // vision.pop("_heads")
    if int(vc["num_channels"]) != 3:
        raise InputError(f"{path}: unsupported: {vc['num_channels']} image channels (CLIP reads RGB)")
    vision.update(image_size=int(vc["image_size"]), patch_size=int(vc["patch_size"]))
    text.update(context_length=int(tc["max_position_embeddings"]), vocab_size=int(tc["vocab_size"]))
    eos = int(tc["eos_token_id"])
    # transformers pools at argmax(ids) for the legacy eos id 2, else at the first eos; with the eos the largest id
    # (CLIP's BPE: 49407), the first maximum is the first eos, so argmax is the same position.
    if eos != 2 and eos != text["vocab_size"] - 1:
        text.update(pool_type="eos", eos_id=eos)
    embed = config.get("projection_dim", 512)
    return {"embed_dim": int(embed), "quick_gelu": tq, "vision_cfg": vision, "text_cfg": text}


def hf_preprocess_cfg(folder: Path, image_size: int) -> dict:
    """open_clip's preprocess_cfg from preprocessor_config.json; {} (OpenAI's CLIP preprocessing) when absent."""
    path = folder / PREPROCESSOR
    if not path.is_file():
        return {}
    try:
        p = json.loads(read_text_file(path, "JSON config"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not valid JSON ({e})") from None
    p = p.get("image_processor", p) if isinstance(p, dict) else {}
    out = {}
    if "image_mean" in p:
        out["mean"] = [float(x) for x in p["image_mean"]]
    if "image_std" in p:
        out["std"] = [float(x) for x in p["image_std"]]
    if p.get("do_normalize") is False:
        raise InputError(f"{path}: unsupported: do_normalize false")
    if "resample" in p:
        if p["resample"] not in RESAMPLE:
            raise InputError(f"{path}: unsupported resample {p['resample']} (bilinear 2 or bicubic 3)")
        out["interpolation"] = RESAMPLE[p["resample"]]
    size, crop = p.get("size"), p.get("crop_size")
    do_crop = p.get("do_center_crop", crop is not None)
    if isinstance(size, int):
        size = {"shortest_edge": size}
    if isinstance(crop, int):
        crop = {"height": crop, "width": crop}
    if size and "shortest_edge" in size:
        crop_ok = not do_crop or (crop and crop.get("height") == crop.get("width") == size["shortest_edge"])
        if size["shortest_edge"] != image_size or not crop_ok:
            raise InputError(f"{path}: unsupported preprocessing: resize to {size['shortest_edge']} and crop to "
                             f"{crop} for a {image_size}-pixel model (open_clip resizes and crops to the same size)")
        out["resize_mode"] = "shortest"
    elif size and "height" in size:
        if not (size.get("height") == size.get("width") == image_size) or (do_crop and crop and crop.get("height") != image_size):
            raise InputError(f"{path}: unsupported preprocessing: size {size} for a {image_size}-pixel model")
        out["resize_mode"] = "squash"
    return out


# ---------------------------------------------------------------------------------------------------------------
# tokenizer


# ---------------------------------------------------------------------------------------------------------------
# the format

class HuggingFaceCLIP:
    name = "hf-transformers"
    priority = 10

    def recognises(self, model, checkpoint):
        folder = _folder(str(model))
        return folder.is_dir() and (folder / CONFIG).is_file() and not (folder / "open_clip_config.json").is_file()

    def resolve(self, model, checkpoint, allow_random):
        folder = _folder(str(model))
        config_path = folder / CONFIG
        config = read_json(config_path, "transformers config")
        model_cfg = hf_to_model_cfg(config, config_path)
        preprocess_cfg = hf_preprocess_cfg(folder, model_cfg["vision_cfg"]["image_size"])
        check_tokenizer(folder, model_cfg["text_cfg"])
        if checkpoint is not None:
            weights = Path(checkpoint)
            if not weights.is_file():
                raise InputError(f"{checkpoint}: no such checkpoint file")
        else:
            found = [folder / n for n in WEIGHTS if (folder / n).is_file()]
            if not found:
                if any(folder.glob("*.index.json")):
                    raise InputError(f"{folder}: sharded weights are not supported yet; merge the shards into "
                                     "one model.safetensors")
                raise InputError(f"{folder}: no weights in the folder (expected {' or '.join(WEIGHTS)})")
            weights = found[0]
        lazy = LazyState(weights)
        plan = tensor_plan(model_cfg["text_cfg"]["layers"], model_cfg["vision_cfg"]["layers"])

        def shapes():
            hf = lazy.shapes()
            _check_keys(plan, hf, weights)
            return {oc: _apply_shape(op, [hf[n] for n in names]) for oc, names, op in plan}

        def state():
            hf = lazy.state()
            _check_keys(plan, hf, weights)
            return hf_to_openclip(hf, plan)

        return ResolvedModel(model_cfg, preprocess_cfg, source=str(model), source_format=self.name,
                             checkpoint=weights, read_state=state, read_shapes=shapes,
                             files=[weights, config_path] + ([folder / PREPROCESSOR]
                                                             if (folder / PREPROCESSOR).is_file() else []))


register(HuggingFaceCLIP())


# ---------------------------------------------------------------------------------------------------------------
# writing back

def _hf_tower(cfg: dict, quick: bool, which: str) -> dict:
    act = "quick_gelu" if quick else ("gelu_pytorch_tanh" if (cfg.get("act_kwargs") or {}).get("approximate") == "tanh"
                                      else "gelu")
    if set(cfg.get("act_kwargs") or {}) - {"approximate"} or set(cfg.get("norm_kwargs") or {}) - {"eps"}:
        raise InputError(f"the {which} tower's act/norm options cannot be written as a transformers CLIP")
    width = int(cfg["width"])
    return {"hidden_size": width, "intermediate_size": int(width * cfg.get("mlp_ratio", 4.0)),
            "num_hidden_layers": int(cfg["layers"]), "hidden_act": act,
            "layer_norm_eps": float((cfg.get("norm_kwargs") or {}).get("eps", 1e-5))}


SUPPORTED_VISION = {"width", "layers", "head_width", "mlp_ratio", "patch_size", "image_size", "act_kwargs",
                    "norm_kwargs"}
SUPPORTED_TEXT = {"width", "layers", "heads", "mlp_ratio", "context_length", "vocab_size", "act_kwargs",
                  "norm_kwargs", "pool_type", "eos_id"}


def model_cfg_to_hf(model_cfg: dict) -> dict:
    """A transformers CLIPConfig dictionary for an open_clip CLIP ViT; one line for what it cannot express."""
    v, t = model_cfg["vision_cfg"], model_cfg["text_cfg"]
    extra = sorted((set(v) - SUPPORTED_VISION) | (set(t) - SUPPORTED_TEXT)
                   | (set(model_cfg) - {"embed_dim", "quick_gelu", "vision_cfg", "text_cfg"}))
    if extra or not isinstance(v.get("layers"), int):
        raise InputError("this model cannot be written as a transformers CLIP (unsupported: "
                         f"{', '.join(extra) if extra else 'a ResNet image tower'})")
    quick = bool(model_cfg.get("quick_gelu", False))
    text = {**_hf_tower(t, quick, "text"), "num_attention_heads": int(t.get("heads", 8)),
            "max_position_embeddings": int(t.get("context_length", 77)), "vocab_size": int(t.get("vocab_size", 49408)),
            "bos_token_id": 49406, "pad_token_id": 1, "projection_dim": int(model_cfg["embed_dim"]),
            "model_type": "clip_text_model"}
    pool = t.get("pool_type", "argmax")
    if pool == "eos":
        text["eos_token_id"] = int(t["eos_id"])
    elif pool == "argmax":
        text["eos_token_id"] = text["vocab_size"] - 1 if text["vocab_size"] == STANDARD_VOCAB else 2
    else:
        raise InputError(f"this model cannot be written as a transformers CLIP (text pooling {pool!r})")
    vision = {**_hf_tower(v, quick, "vision"), "num_attention_heads": int(v["width"]) // int(v.get("head_width", 64)),
              "image_size": int(v["image_size"]), "patch_size": int(v["patch_size"]), "num_channels": 3,
              "projection_dim": int(model_cfg["embed_dim"]), "model_type": "clip_vision_model"}
    return {"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": int(model_cfg["embed_dim"]),
            "logit_scale_init_value": 2.6592, "text_config": text, "vision_config": vision, "dtype": "float32"}


def write_hf_folder(state: dict[str, torch.Tensor], model_cfg: dict, preprocess_cfg: dict, out: str | Path) -> Path:
    """Write an open_clip CLIP as a transformers CLIP folder (config.json, model.safetensors, preprocessor)."""
    from safetensors.torch import save as st_save

    from idia.io import atomic_write_bytes, atomic_write_json

    config = model_cfg_to_hf(model_cfg)
    plan = tensor_plan(config["text_config"]["num_hidden_layers"], config["vision_config"]["num_hidden_layers"])
    tensors = openclip_to_hf(state, plan)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / WEIGHTS[0], st_save(tensors, metadata={"format": "pt"}))
    atomic_write_json(out / CONFIG, config)
    size = int(model_cfg["vision_cfg"]["image_size"])
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
    mode = preprocess_cfg.get("resize_mode", "shortest")
    if mode not in ("shortest", "squash"):
        raise InputError(f"preprocessing resize_mode {mode!r} cannot be written as a transformers CLIP")
    resample = {v: k for k, v in RESAMPLE.items()}.get(preprocess_cfg.get("interpolation", "bicubic"), 3)
    proc = {"image_processor_type": "CLIPImageProcessor", "do_resize": True, "resample": resample,
            "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True, "do_convert_rgb": True,
            "image_mean": list(preprocess_cfg.get("mean", OPENAI_DATASET_MEAN)),
            "image_std": list(preprocess_cfg.get("std", OPENAI_DATASET_STD))}
    if mode == "shortest":
        proc.update(size={"shortest_edge": size}, do_center_crop=True, crop_size={"height": size, "width": size})
    else:
        proc.update(size={"height": size, "width": size}, do_center_crop=False)
    atomic_write_json(out / PREPROCESSOR, proc)
    return out / WEIGHTS[0]
