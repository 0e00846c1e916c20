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
