"""The Encoder: a pretrained CNN with its input size, giving a spatial map and a pooled vector."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np


@dataclass
class Encoder:
    """A loaded backbone.

    ``model`` takes RGB float pixels in [0, 255] at ``input_size`` (its preprocessing is
    inside the graph) and returns a dict with ``spatial`` (N, h, w, C), ``pooled`` (N, C)
    and, for encoders with an ImageNet head, ``probabilities`` (N, 1000).
    ``weights_id`` names the weights, so cached features from other weights are never reused.
    """

    name: str
    input_size: int
    model: keras.Model
    weights_id: str
    runner: object | None = field(default=None, repr=False)  # faster inference, same numbers

    @property
    def feature_dim(self) -> int:
        """Channels of the pooled vector (= of the spatial map)."""
        return int(self.model.output["pooled"].shape[-1])

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        """Shape of one image's spatial map, e.g. (7, 7, 1280)."""
        return tuple(int(d) for d in self.model.output["spatial"].shape[1:])

    @property
    def has_classifier(self) -> bool:
        """Whether the encoder also gives ImageNet class probabilities."""
        return "probabilities" in self.model.output

    def encode(self, images: np.ndarray, kinds: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """Run a batch of (N, S, S, 3) RGB images through the CNN; returns the outputs named in
        ``kinds`` (all when None: a 7x7 map not asked for is not copied out)."""
        batch = np.asarray(images, dtype=np.float32)
        if self.runner is not None:
            return self.runner(batch, kinds)
        return {k: np.asarray(v) for k, v in self.model.predict_on_batch(batch).items()
                if kinds is None or k in kinds}


def code_digest(*files: str) -> str:
    """A short hash of these package files (paths under ``captioner/``): caches built by the
    code in them are keyed by it, so changed code never meets results of the old one."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for name in files:
        digest.update((package / name).read_bytes())
    return digest.hexdigest()[:12]
