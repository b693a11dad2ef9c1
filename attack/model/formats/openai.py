"""OpenAI's original CLIP `.pt` files: TorchScript archives, read without running them.

An archive is a zip: ``<name>/data.pkl`` pickles the module tree, whose tensors point at raw bytes under
``<name>/data/<key>``. A restricted unpickler turns the few classes such a pickle legitimately names (torch's
tensor-rebuild function, storage types, script-module records) into plain records and refuses every other import,
so a hostile archive cannot run code. The architecture is inferred from the tensors' shapes (OpenAI's naming is
open_clip's), with quick-GELU as OpenAI trained it.
"""

from __future__ import annotations

import math
from pathlib import Path

from idia.attack.model.formats import ResolvedModel, register
from idia.attack.model.formats.statedict import LazyState
from idia.attack.model.formats.torchscript import is_torchscript
from idia.errors import InputError


def _count(shapes, prefix: str) -> int:
    """How many numbered blocks sit under a prefix (``transformer.resblocks.``)."""
    return len({k[len(prefix):].split(".")[0] for k in shapes if k.startswith(prefix)})


def infer_config(shapes: dict[str, tuple[int, ...]], path: Path) -> dict:
    """An open_clip model_cfg from tensor shapes in OpenAI's naming (ViT or ModifiedResNet image tower)."""
    def need(key):
        if key not in shapes:
            raise InputError(f"{path}: not a CLIP in OpenAI's naming (no {key})")
        return shapes[key]

    def heads_of(width, what):
        if width % 64:
            raise InputError(f"{path}: cannot infer the {what} tower's heads (width {width} is not a multiple of "
                             "OpenAI's 64-wide heads)")
        return width // 64

    embed_dim = need("text_projection")[1]
    text_width = need("ln_final.weight")[0]
    text = {"context_length": need("positional_embedding")[0], "vocab_size": need("token_embedding.weight")[0],
            "width": text_width, "heads": heads_of(text_width, "text"),
            "layers": _count(shapes, "transformer.resblocks."),
            "mlp_ratio": need("transformer.resblocks.0.mlp.c_fc.weight")[0] / text_width}
    if "visual.proj" in shapes:
        width, _, patch, _ = need("visual.conv1.weight")
        grid = math.isqrt(need("visual.positional_embedding")[0] - 1)
        heads_of(width, "image")
        vision = {"width": width, "layers": _count(shapes, "visual.transformer.resblocks."), "patch_size": patch,
                  "image_size": patch * grid, "head_width": 64,
                  "mlp_ratio": need("visual.transformer.resblocks.0.mlp.c_fc.weight")[0] / width}
    elif "visual.attnpool.positional_embedding" in shapes:
        layers = [_count(shapes, f"visual.layer{i}.") for i in (1, 2, 3, 4)]
        grid = math.isqrt(need("visual.attnpool.positional_embedding")[0] - 1)
        vision = {"layers": layers, "width": need("visual.layer1.0.conv1.weight")[0], "image_size": grid * 32}
    else:
        raise InputError(f"{path}: not a CLIP in OpenAI's naming (neither a ViT nor a ResNet image tower)")
    return {"embed_dim": embed_dim, "quick_gelu": True, "vision_cfg": vision, "text_cfg": text}


class OpenAIArchive:
    name = "openai-torchscript"
    priority = 20

    def recognises(self, model, checkpoint):
        p = Path(str(model))
        return checkpoint is None and p.is_file() and is_torchscript(p)

    def resolve(self, model, checkpoint, allow_random):
        path = Path(str(model))
        lazy = LazyState(path)
        shapes = lazy.shapes()
        return ResolvedModel(model_cfg=infer_config(shapes, path), preprocess_cfg={}, source=str(model),
                             source_format=self.name, checkpoint=path, read_state=lazy.state,
                             read_shapes=lambda: shapes, files=[path])


register(OpenAIArchive())
