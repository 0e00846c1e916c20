"""A faster inference path for an encoder: the same Keras graph converted to float32 TFLite.

On a CPU, TFLite's XNNPACK kernels run Lite0's depthwise convolutions about twice as fast as
Keras. The Keras model stays the reference (and the one that trains); tests check that both
give the same features.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path

import keras
import numpy as np


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    return Interpreter


def convert(model: keras.Model, path: Path) -> None:
    """Convert ``model`` to a float32 .tflite file at ``path`` (atomically)."""
    import tensorflow as tf

    from captioner.files import atomic_write_bytes

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints every captured variable
        blob = converter.convert()
    atomic_write_bytes(path, blob)


class TFLiteRunner:
    """Runs a converted encoder; called like ``Encoder.encode``, returns the same output dict."""

    def __init__(self, path: Path, num_threads: int | None = None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite's deprecation notice
            self._interpreter = _interpreter_class()(
                model_path=str(path), num_threads=num_threads or os.cpu_count() or 1
            )
        self._runner = self._interpreter.get_signature_runner()
        (self._input_name,) = self._runner.get_input_details()

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        outputs = self._runner(**{self._input_name: np.ascontiguousarray(batch, dtype=np.float32)})
        return {name: np.array(value) for name, value in outputs.items()}


def runner_for(model: keras.Model, path: Path) -> TFLiteRunner:
    """A runner for ``model``, converting it to ``path`` first if that file is not there yet."""
    if not Path(path).is_file():
        convert(model, path)
    return TFLiteRunner(path)
