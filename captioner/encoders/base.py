"""The Encoder: a pretrained CNN with its input size, giving a spatial map and a pooled vector."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np


class Encoder:
    """A loaded backbone.

    ``model`` takes RGB float pixels in [0, 255] at ``input_size`` (its preprocessing is
    inside the graph) and returns a dict with ``spatial`` (N, h, w, C), ``pooled`` (N, C)
    and, for encoders with an ImageNet head, ``probabilities`` (N, 1000).
    ``weights_id`` names the weights, so cached features from other weights are never reused.

    An encoder that runs from a converted TFLite file (``runner``) needs no Keras model to
    encode: it is then given the output shapes and the layers' digest its file was made with,
    and ``build`` makes the Keras model only if someone asks for it (export, training).
    """

    def __init__(self, name: str, input_size: int, model=None, weights_id: str = "",
                 runner: object | None = None, *, outputs: dict[str, tuple[int, ...]] | None = None,
                 layers_digest: str | None = None, build: Callable | None = None):
        self.name, self.input_size, self.weights_id, self.runner = name, input_size, weights_id, runner
        self._model, self._build = model, build
        self._outputs = outputs
        self._layers_digest = layers_digest

    @property
    def model(self):
        """The Keras model (built on first use when the encoder runs from a TFLite file)."""
        if self._model is None:
            self._model = self._build()
        return self._model

    @property
    def outputs(self) -> dict[str, tuple[int, ...]]:
        """Each output's shape for one image, by kind, e.g. ``{"pooled": (1280,), ...}``."""
        if self._outputs is None:
            self._outputs = {k: tuple(int(d) for d in v.shape[1:]) for k, v in self.model.output.items()}
        return self._outputs

    @property
    def layers_digest(self) -> str:
        """A hash of the network's layer configuration (part of the feature cache's key)."""
        if self._layers_digest is None:  # kept: the config takes 60 ms, and every video asks
            config = json.dumps(self.model.get_config(), sort_keys=True, default=str)
            self._layers_digest = hashlib.sha256(config.encode()).hexdigest()
        return self._layers_digest

    @property
    def feature_dim(self) -> int:
        """Channels of the pooled vector (= of the spatial map)."""
        return self.outputs["pooled"][-1]

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        """Shape of one image's spatial map, e.g. (7, 7, 1280)."""
        return self.outputs["spatial"]

    @property
    def has_classifier(self) -> bool:
        """Whether the encoder also gives ImageNet class probabilities."""
        return "probabilities" in self.outputs

    def encode(self, images: np.ndarray, kinds: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """Run a batch of (N, S, S, 3) RGB images through the CNN; returns the outputs named in
        ``kinds`` (all when None: a 7x7 map not asked for is not copied out)."""
        batch = np.asarray(images, dtype=np.float32)
        if self.runner is not None:
            return self.runner(batch, kinds)
        return {k: np.asarray(v) for k, v in self.model.predict_on_batch(batch).items()
                if kinds is None or k in kinds}

    def __repr__(self) -> str:
        return f"Encoder({self.name!r}, {self.input_size}, weights_id={self.weights_id!r})"


def code_digest(*files: str) -> str:
    """A short hash of these package files (paths under ``captioner/``): caches built by the
    code in them are keyed by it, so changed code never meets results of the old one."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for name in files:
        digest.update((package / name).read_bytes())
    return digest.hexdigest()[:12]
