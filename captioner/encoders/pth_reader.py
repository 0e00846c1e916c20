"""Read a legacy-format PyTorch ``.pth`` state dict into NumPy arrays, without torch.

A ``.pth`` is a pickle, and unpickling an untrusted pickle runs whatever code it names.
So the unpickler here resolves only the handful of globals a plain state dict needs and
refuses every other one with an error, before anything is called.

Legacy layout (torch < 1.6, not a zip): four pickles in a row (magic number, protocol
version, system info, the state dict whose tensors point at storages by persistent id),
then a pickle of the storage keys, then each storage as an int64 element count followed by
its raw little-endian bytes, in the order of those keys.
"""

from __future__ import annotations

import collections
import math
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from captioner.errors import EncoderError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
# Entries may share a storage (tied weights), and each is copied out on its own, so the arrays
# may outgrow the file; this many times its size is plenty for a real state dict, and stops a
# small file whose hundreds of entries alias one storage from taking gigabytes.
MAX_GROWTH = 4

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


@dataclass(frozen=True)
class _StorageRef:
    key: str
    dtype: type
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    shape: tuple
    stride: tuple


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored) -> _TensorRef:
    """Stand-in for torch._utils._rebuild_tensor_v2: remember the view, build it later."""
    return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


class _StorageType:
    """Stand-in for torch.FloatStorage and friends: only its name is needed."""

    def __init__(self, name: str):
        self.dtype = _STORAGE_DTYPES[name]


def _allowed_globals() -> dict:
    allowed = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    }
    for name in _STORAGE_DTYPES:
        allowed[("torch", name)] = _StorageType(name)
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that knows only the globals of a state dict and refuses all others."""

    def __init__(self, file, source: Path):
        super().__init__(file)
        self._source = source
        self._allowed = _allowed_globals()

    def find_class(self, module: str, name: str):
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise EncoderError(
                f"{self._source}: refused to load: the file asks for '{module}.{name}', "
                "which a plain weights file never needs (it may run code). "
                "Use a weights file from a source you trust."
            ) from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise EncoderError(f"{self._source}: unexpected persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid[:5]
        if not isinstance(storage_type, _StorageType):
            raise EncoderError(f"{self._source}: storage of unknown type {storage_type!r}")
        return _StorageRef(str(key), storage_type.dtype, int(numel))


def _load_one(f, source: Path):
    try:
        return RestrictedUnpickler(f, source).load()
    except EncoderError:
        raise
    except Exception as exc:  # truncated or garbled pickle stream
        raise EncoderError(f"{source}: not a readable legacy PyTorch file ({exc})") from exc


def read_state_dict(path: Path) -> dict[str, np.ndarray]:
    """Read a legacy (non-zip) PyTorch state dict file into ``{name: ndarray}``."""
    path = Path(path)
    if not path.is_file():
        raise EncoderError(f"{path}: weights file not found")
    with path.open("rb") as f:
        if _load_one(f, path) != LEGACY_MAGIC:
            raise EncoderError(
                f"{path}: not a legacy-format PyTorch file (zip-format files are not supported)"
            )
        _load_one(f, path)  # protocol version
        sys_info = _load_one(f, path)
        if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
            raise EncoderError(f"{path}: big-endian PyTorch files are not supported")
        state = _load_one(f, path)
        keys = _load_one(f, path)
        if not isinstance(state, dict) or not isinstance(keys, list):
            raise EncoderError(f"{path}: not a state dict file")
        size = path.stat().st_size
        storages = {}
        for key in keys:
            storages[key] = _read_storage(f, path, key, state, size)
    views = {name: _view(ref, storages, path, name) for name, ref in state.items()}
    total = sum(view.nbytes for view in views.values())
    if total > MAX_GROWTH * size:
        raise EncoderError(
            f"{path}: its {len(views)} tensors would take {total / 1e6:.1f} MB, more than "
            f"{MAX_GROWTH} times the file's size ({size / 1e6:.1f} MB): its entries share storages "
            "over and over, which no real weights file does. Use a weights file you trust.")
    return {name: np.array(view, order="C") for name, view in views.items()}  # own copies


def _read_storage(f, path: Path, key: str, state: dict, file_size: int) -> np.ndarray:
    dtype = next(
        (r.storage.dtype for r in state.values() if isinstance(r, _TensorRef) and r.storage.key == key),
        np.uint8,
    )
    header = f.read(8)
    if len(header) != 8:
        raise EncoderError(f"{path}: file ends before storage {key}")
    (numel,) = struct.unpack("<q", header)
    nbytes = numel * np.dtype(dtype).itemsize
    # Checked before reading: a lying count must not make us allocate what the file lacks.
    if numel < 0 or nbytes > file_size - f.tell():
        raise EncoderError(f"{path}: storage {key} claims {numel} elements, more than the file holds")
    raw = f.read(nbytes)
    if len(raw) != nbytes:
        raise EncoderError(f"{path}: file is truncated inside storage {key}")
    return np.frombuffer(raw, dtype=dtype)


def _view(ref, storages: dict, path: Path, name: str) -> np.ndarray:
    """The tensor a reference describes, as a read-only view of its storage (no copy yet),
    after checking that it lies inside it."""
    if not isinstance(ref, _TensorRef):
        raise EncoderError(f"{path}: state dict entry {name} of unexpected type {type(ref).__name__}")
    flat = storages.get(ref.storage.key)
    if flat is None:
        raise EncoderError(f"{path}: tensor {name} points to storage {ref.storage.key}, which is absent")
    _check_view(ref, len(flat), path, name)
    item = flat.itemsize
    view = np.lib.stride_tricks.as_strided(
        flat[ref.offset:],
        shape=ref.shape,
        strides=tuple(s * item for s in ref.stride),
        writeable=False,
    )
    return view


def _check_view(ref: _TensorRef, numel: int, path: Path, name: str) -> None:
    """Refuse offsets, shapes and strides that would read outside the storage or blow up memory."""
    numbers = (ref.offset, *ref.shape, *ref.stride)
    if len(ref.shape) != len(ref.stride) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in numbers):
        raise EncoderError(f"{path}: tensor {name} has a malformed shape {ref.shape} or stride {ref.stride}")
    if any(n > numel for n in (ref.offset, *ref.shape, *ref.stride)):
        # No real dimension, stride or offset exceeds the storage; huge ones overflow numpy.
        raise EncoderError(f"{path}: tensor {name} has a shape {ref.shape}, stride {ref.stride} "
                           f"or offset {ref.offset} beyond its storage of {numel} elements")
    elements = math.prod(ref.shape)
    # A weight never has more elements than its storage (no broadcast views in a state dict).
    if elements > numel:
        raise EncoderError(f"{path}: tensor {name} of shape {ref.shape} is larger than its storage "
                           f"of {numel} elements")
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.stride)) if elements else 0
    if elements and last >= numel or ref.offset > numel:
        raise EncoderError(f"{path}: tensor {name} reaches past the end of its storage "
                           f"(offset {ref.offset}, shape {ref.shape}, stride {ref.stride}, "
                           f"storage of {numel} elements)")
