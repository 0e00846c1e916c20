import io
import os
import pickle

import numpy as np
import pytest

from captioner.encoders.lite0 import pth_path
from captioner.encoders.pth_reader import LEGACY_MAGIC, read_state_dict
from captioner.errors import EncoderError


def _legacy_file(tmp_path, payload) -> "os.PathLike":
    """A file laid out like a legacy torch save whose state-dict pickle is ``payload``."""
    buf = io.BytesIO()
    for header in (LEGACY_MAGIC, 1001, {"little_endian": True}):
        pickle.dump(header, buf, protocol=2)
    buf.write(payload)
    pickle.dump([], buf, protocol=2)
    path = tmp_path / "weights.pth"
    path.write_bytes(buf.getvalue())
    return path


class _RunsCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_refuses_pickle_that_would_run_a_command(tmp_path):
    marker = tmp_path / "pwned"
    path = _legacy_file(tmp_path, pickle.dumps({"w": _RunsCommand(marker)}, protocol=2))
    with pytest.raises(EncoderError, match=r"refused.*(posix|os)\.system"):
        read_state_dict(path)
    assert not marker.exists()
    # The same bytes through an unrestricted unpickler would have run the command:
    with open(path, "rb") as f:
        for _ in range(4):
            pickle.load(f)
    assert marker.exists()


def test_refuses_unexpected_global(tmp_path):
    payload = pickle.dumps({"w": np.float32}, protocol=2)  # a harmless but unexpected global
    with pytest.raises(EncoderError, match="numpy"):
        read_state_dict(_legacy_file(tmp_path, payload))


def test_rejects_files_that_are_not_legacy_torch(tmp_path):
    path = tmp_path / "x.pth"
    path.write_bytes(b"PK\x03\x04 not a legacy pickle")
    with pytest.raises(EncoderError, match="x.pth"):
        read_state_dict(path)
    with pytest.raises(EncoderError, match="not found"):
        read_state_dict(tmp_path / "missing.pth")


def test_truncated_storage_is_reported(tmp_path):
    data = pth_path().read_bytes()
    path = tmp_path / "cut.pth"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(EncoderError, match="truncated|ends"):
        read_state_dict(path)


def test_reads_real_lite0_file():
    state = read_state_dict(pth_path())
    assert len(state) == 296
    stem = state["_conv_stem.weight"]
    assert stem.shape == (32, 3, 3, 3) and stem.dtype == np.float32
    assert stem.flags["C_CONTIGUOUS"]
    assert state["_fc.weight"].shape == (1000, 1280)
    assert state["_bn0.num_batches_tracked"].dtype == np.int64
    # The stored layout is channels-last (converted from TF); the view must undo it.
    assert np.isfinite(stem).all() and 0.01 < float(np.abs(stem).mean()) < 10


def _tensor_file(tmp_path, monkeypatch, offset, shape, stride, numel=6, written=None, entries=1):
    """A legacy torch save of one float tensor view over one storage of ``numel`` floats (or of
    ``entries`` views, ``w0``, ``w1``..., all over that one storage).

    The torch names the file refers to are stood in by a fake module, only while pickling,
    so the bytes are what torch itself writes for a state dict.
    """
    import struct
    import sys
    import types

    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while pickling")

    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"
    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    torch.FloatStorage, torch._utils, utils._rebuild_tensor_v2 = FloatStorage, utils, _rebuild_tensor_v2
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)

    class View:
        def __reduce__(self):
            return (_rebuild_tensor_v2, (Storage(), offset, shape, stride, False, {}))

    class Storage:
        pass

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", FloatStorage, "0", "cpu", numel) if isinstance(obj, Storage) else None

    buf = io.BytesIO()
    for header in (LEGACY_MAGIC, 1001, {"little_endian": True}):
        pickle.dump(header, buf, protocol=2)
    names = ["w"] if entries == 1 else [f"w{i}" for i in range(entries)]
    Pickler(buf, protocol=2).dump({name: View() for name in names})
    pickle.dump(["0"], buf, protocol=2)
    count = numel if written is None else written
    buf.write(struct.pack("<q", count) + np.arange(numel, dtype=np.float32).tobytes())
    path = tmp_path / "lying.pth"
    path.write_bytes(buf.getvalue())
    return path


def test_an_honest_view_reads_back(tmp_path, monkeypatch):
    path = _tensor_file(tmp_path, monkeypatch, offset=1, shape=(2, 2), stride=(2, 1))
    assert read_state_dict(path)["w"].tolist() == [[1, 2], [3, 4]]


@pytest.mark.parametrize(
    "offset, shape, stride, reason",
    [
        (4, (2, 2), (2, 1), "reaches past the end"),  # offset pushes the view out
        (0, (2, 3), (4, 1), "reaches past the end"),  # strides reach beyond 6 floats
        (0, (4, 2), (0, 0), "larger than its storage"),  # a broadcast view, more than stored
        (-1, (2,), (1,), "malformed"),
        (0, (2, 2), (1,), "malformed"),
        (0, (1, 1), (2**70, 0), "beyond its storage"),  # would overflow numpy's strides
        (0, (0, 2**70), (1, 1), "beyond its storage"),
        (0, (2**31, 2**31, 0), (1, 1, 1), "beyond its storage"),
    ],
)
def test_tensor_views_that_lie_about_their_storage_are_refused(tmp_path, monkeypatch, offset, shape,
                                                                stride, reason):
    path = _tensor_file(tmp_path, monkeypatch, offset, shape, stride)
    with pytest.raises(EncoderError, match=reason):
        read_state_dict(path)


def test_many_entries_aliasing_one_storage_are_refused_before_copying(tmp_path, monkeypatch):
    """Each entry is copied out on its own: 100 views of one 64 KB storage would take 6.4 MB
    from a 70 KB file. Tied weights (a storage read twice) are still fine."""
    numel = 16384
    tied = _tensor_file(tmp_path, monkeypatch, 0, (numel,), (1,), numel=numel, entries=2)
    state = read_state_dict(tied)
    assert sorted(state) == ["w0", "w1"] and state["w1"][-1] == numel - 1
    path = _tensor_file(tmp_path, monkeypatch, 0, (numel,), (1,), numel=numel, entries=100)
    with pytest.raises(EncoderError, match=r"100 tensors.*times the file's size.*share"):
        read_state_dict(path)


def test_a_storage_larger_than_the_file_is_refused_before_reading(tmp_path, monkeypatch):
    path = _tensor_file(tmp_path, monkeypatch, 0, (2,), (1,), written=10**15)
    with pytest.raises(EncoderError, match="more than the file holds"):
        read_state_dict(path)
