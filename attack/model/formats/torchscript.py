"""TorchScript archives read without running them: a restricted unpickler maps the handful of names a data.pkl uses
(torch's tensor-rebuild function, storage types, script-module records) to plain records and refuses every other
import; tensors are then read from the archive's storage files. Used by the OpenAI archive format and by the
generic state-dict reader (a TorchScript checkpoint given as --checkpoint)."""

from __future__ import annotations

import collections
import math
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from idia.errors import InputError

DERIVED = ("attn_mask", "input_resolution", "context_length", "vocab_size")  # rebuilt by the model, not weights
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


def is_torchscript(path: Path) -> bool:
    """A TorchScript archive is a zip with compiled code and constants beside the pickled tensors."""
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("/constants.pkl") or "/code/" in n for n in z.namelist())
    except OSError:
        return False
