"""OpenAI's original CLIP `.pt` files: TorchScript archives, read without running them.

An archive is a zip: ``<name>/data.pkl`` pickles the module tree, whose tensors point at raw bytes under
``<name>/data/<key>``. A restricted unpickler turns the few classes such a pickle legitimately names (torch's
tensor-rebuild function, storage types, script-module records) into plain records and refuses every other import,
so a hostile archive cannot run code. The architecture is inferred from the tensors' shapes (OpenAI's naming is
open_clip's), with quick-GELU as OpenAI trained it.
"""

from __future__ import annotations

import collections
import math
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from idia.errors import InputError
from idia.attack.model.formats import ResolvedModel, register
from idia.attack.model.formats.statedict import DERIVED, LazyState, is_torchscript

_STORAGES = {"FloatStorage": torch.float32, "HalfStorage": torch.float16, "DoubleStorage": torch.float64,
             "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
             "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
             "BoolStorage": torch.bool}


@dataclass(frozen=True)
class _StorageType:
    dtype: torch.dtype


@dataclass(frozen=True)
class _Storage:
    key: str
    dtype: torch.dtype
    numel: int


@dataclass(frozen=True)
class TensorRecord:
    """Where a tensor's bytes are and how to view them; its shape is known without reading them."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.size


class _ScriptObject:
    """A TorchScript module or object, kept as its attribute dictionary."""

    def __init__(self, *args):
        self.attrs: dict = {}

    def __setstate__(self, state):
        self.attrs = state if isinstance(state, dict) else {}


def _rebuild_tensor(storage, offset, size, stride, *rest):
    if not isinstance(storage, _Storage) or not isinstance(offset, int):
        raise _Malformed("a tensor record without a storage")
    size, stride = tuple(size), tuple(stride)
    if len(size) != len(stride) or not all(isinstance(x, int) and x >= 0 for x in size + stride):
        raise _Malformed("a tensor record with a bad size or stride")
    if math.prod(size) and offset + sum((n - 1) * s for n, s in zip(size, stride)) >= storage.numel:
        raise _Malformed("a tensor that reaches past its storage")
    return TensorRecord(storage, offset, size, stride)


def _passthrough(value, *rest):
    return value


class _Refused(Exception):
    pass


class _Malformed(Exception):
    pass


class _RestrictedUnpickler(pickle.Unpickler):
    """Maps the handful of names a TorchScript data.pkl uses to records; every other import is refused."""

    def find_class(self, module, name):
        if module == "__torch__" or module.startswith("__torch__."):
            return _ScriptObject
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch" and name in _STORAGES:
            return _StorageType(_STORAGES[name])
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _passthrough
        if module == "torch.jit._pickle" and name in ("build_intlist", "build_doublelist", "build_boollist",
                                                      "build_tensorlist", "restore_type_tag"):
            return _passthrough
        raise _Refused(f"{module}.{name}")

    def persistent_load(self, pid):
        if (not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage"
                or not isinstance(pid[1], _StorageType) or not isinstance(pid[2], str) or not isinstance(pid[4], int)):
            raise _Malformed("an unknown persistent record")
        return _Storage(pid[2], pid[1].dtype, pid[4])


def _archive_root(z: zipfile.ZipFile, path: Path) -> str:
    roots = [n[: -len("data.pkl")] for n in z.namelist() if n.endswith("data.pkl") and n.count("/") <= 1]
    if len(roots) != 1:
        raise InputError(f"{path}: not a TorchScript archive (no single data.pkl)")
    return roots[0]


def read_archive_records(path: Path) -> dict[str, TensorRecord]:
    """The archive's tensors as records, named like a state dict; nothing is executed and no bytes are copied."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as z:
            root = _archive_root(z, path)
            data = z.read(root + "data.pkl")
    except (zipfile.BadZipFile, OSError, KeyError) as e:
        raise InputError(f"{path}: not a readable TorchScript archive ({e})") from None
    import io
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data)).load()
    except _Refused as e:
        raise InputError(f"{path}: refused: the archive's pickle would run code (it imports {e}); idia reads "
                         "only tensors from TorchScript archives") from None
    except _Malformed as e:
        raise InputError(f"{path}: not a readable TorchScript archive ({e})") from None
    except (pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise InputError(f"{path}: not a readable TorchScript archive (unpickling failed: {e})") from None
    records: dict[str, TensorRecord] = {}
    seen: set[int] = set()

    def walk(node, prefix):
        if id(node) in seen:
            return
        seen.add(id(node))
        for name, value in node.attrs.items():
            if not isinstance(name, str):
                continue
            if isinstance(value, TensorRecord):
                if name not in DERIVED:
                    records[prefix + name] = value
            elif isinstance(value, _ScriptObject):
                walk(value, f"{prefix}{name}.")

    if isinstance(obj, _ScriptObject):
        walk(obj, "")
    elif isinstance(obj, dict):  # a plain pickled state dict inside an archive
        records = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, TensorRecord)}
    if not records:
        raise InputError(f"{path}: a TorchScript archive without tensors")
    return records


def read_archive(path: Path) -> dict[str, torch.Tensor]:
    """The archive's tensors, copied out of the zip's raw bytes."""
    path = Path(path)
    records = read_archive_records(path)
    storages: dict[str, torch.Tensor] = {}
    with zipfile.ZipFile(path) as z:
        root = _archive_root(z, path)
        out = {}
        for name, rec in records.items():
            st = rec.storage
            if st.key not in storages:
                try:
                    raw = z.read(f"{root}data/{st.key}")
                except KeyError:
                    raise InputError(f"{path}: the archive names tensor data {st.key!r} that it does not hold") from None
                itemsize = torch.empty((), dtype=st.dtype).element_size()
                if len(raw) != st.numel * itemsize:
                    raise InputError(f"{path}: tensor data {st.key!r} has {len(raw)} bytes, "
                                     f"expected {st.numel * itemsize}")
                storages[st.key] = torch.frombuffer(bytearray(raw), dtype=st.dtype) if raw else torch.empty(0, dtype=st.dtype)
            out[name] = torch.as_strided(storages[st.key], rec.size, rec.stride, rec.offset).clone()
    return out


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
