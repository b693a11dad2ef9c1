"""open_clip's own forms: an architecture name with a checkpoint file, a hub-layout folder (``local-dir:`` too),
or a JSON architecture config with a checkpoint. Registered last: it owns every model string no other format
recognises, and gives the one-line errors for the ones nobody can read."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import open_clip

from idia.attack.model.formats import ResolvedModel, register
from idia.attack.model.formats.statedict import LazyState
from idia.errors import InputError
from idia.io import read_text_file

HUB_CONFIG = "open_clip_config.json"
HUB_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors",
               "open_clip_pytorch_model.bin", "open_clip_pytorch_model.pth")
CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")


def read_json(path: Path, what: str = "JSON architecture config") -> dict:
    """A JSON object from a model's config file, or one line saying what the file is not."""
    try:
        data = json.loads(read_text_file(path, "JSON config"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not a valid {what} ({e})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: not a {what} (expected an object)")
    return data


def _split_config(data: dict, path: Path) -> tuple[dict, dict]:
    """(model_cfg, preprocess_cfg) from a hub-layout config or a bare architecture config."""
    model_cfg = data.get("model_cfg", data)
    if not isinstance(model_cfg, dict) or "vision_cfg" not in model_cfg or "text_cfg" not in model_cfg:
        raise InputError(f"{path}: not an open_clip architecture config (needs 'vision_cfg' and 'text_cfg')")
    return copy.deepcopy(model_cfg), dict(data.get("preprocess_cfg", {}))


class OpenClipForms:
    name = "open_clip"
    priority = 90

    def recognises(self, model, checkpoint):
        return True

    def resolve(self, model, checkpoint, allow_random):
        model = str(model)
        folder = None
        if model.startswith("local-dir:"):
            model = model[len("local-dir:"):]
            if not Path(model).is_dir():
                raise InputError(f"{model}: no such model folder")
        path = Path(model)
        if path.is_dir():
            folder = path
            config_file = path / HUB_CONFIG
            if not config_file.is_file():
                raise InputError(f"{path}: not an open_clip model folder (no {HUB_CONFIG}), nor a Hugging Face "
                                 "CLIP folder (no config.json)")
            model_cfg, preprocess_cfg = _split_config(read_json(config_file), config_file)
            if checkpoint is None:
                found = [path / n for n in HUB_WEIGHTS if (path / n).is_file()]
                if not found:
                    raise InputError(f"{path}: no weights in the folder (expected one of {', '.join(HUB_WEIGHTS)})")
                checkpoint = str(found[0])
        elif path.suffix == ".json":
            if not path.is_file():
                raise InputError(f"{path}: no such architecture config file")
            model_cfg, preprocess_cfg = _split_config(read_json(path), path)
        else:
            if path.exists() and path.suffix in CHECKPOINT_SUFFIXES:
                raise InputError(f"{path}: a checkpoint file was given as --model; pass the architecture name "
                                 f"(e.g. ViT-B-32) as --model and this file as --checkpoint")
            model_cfg = open_clip.get_model_config(model.replace("/", "-"))
            if model_cfg is None:
                raise InputError(f"{model}: neither a local file or folder nor a known open_clip architecture "
                                 "(see `open_clip.list_models()`)")
            model_cfg, preprocess_cfg = copy.deepcopy(model_cfg), {}
        tokenizer = None
        if folder is not None and "hf_tokenizer_name" in model_cfg.get("text_cfg", {}):
            from idia.attack.model.tokenizer import make_tokenizer
            tokenizer = lambda: make_tokenizer(model_cfg, str(folder), folder=folder)  # noqa: E731
        if checkpoint is None:
            if not allow_random:
                raise InputError(f"{model}: no checkpoint given (pass --checkpoint FILE with the weights)")
            return ResolvedModel(model_cfg, preprocess_cfg, source=model, source_format=self.name, checkpoint=None,
                                 make_tokenizer=tokenizer)
        ckpt = Path(checkpoint)
        if not ckpt.exists():
            if open_clip.get_pretrained_cfg(model.replace("/", "-"), str(checkpoint)):
                raise InputError(f"{checkpoint}: an open_clip download tag; idia works offline, so pass a local "
                                 "checkpoint file instead")
            raise InputError(f"{checkpoint}: no such checkpoint file")
        if ckpt.is_dir():
            raise InputError(f"{checkpoint}: is a folder; pass it as --model (open_clip hub layout) or name the file")
        lazy = LazyState(ckpt)
        return ResolvedModel(model_cfg, preprocess_cfg, source=model, source_format=self.name, checkpoint=ckpt,
                             read_state=lazy.state, read_shapes=lazy.shapes, make_tokenizer=tokenizer, files=[ckpt])


register(OpenClipForms())
