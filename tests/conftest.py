"""Shared fixtures: a session-wide cache folder, the real default encoder, the shared data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()
FLICKR = SHARED_DATA / "flickr8k_mini"
VIDEO = SHARED_DATA / "video_mini"


def need(path: Path) -> Path:
    """Skip the test with a clear reason when a piece of the real shared data is absent."""
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (it is ../shared/data in the dev setup)")
    return path


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory) -> Path:
    """Every test writes its caches under one temporary folder, never the user's."""
    path = tmp_path_factory.mktemp("captioner-cache")
    os.environ["CAPTIONER_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def lite0(session_cache):
    """The real default encoder with its ImageNet weights (converted once per session)."""
    from captioner.encoders.registry import get_encoder

    return get_encoder()


@pytest.fixture(scope="session")
def sample_photos():
    from captioner.data.samples import sample_photos

    return sample_photos()


def write_photo(path: Path, seed: int = 0, size=(64, 48), fmt=None, mode="RGB") -> Path:
    """A small synthetic image file (smooth gradients plus noise) in any Pillow format."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (w + h)], -1)
    pixels = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
    img = Image.fromarray(pixels)
    if mode != "RGB":
        img = img.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt)
    return path
