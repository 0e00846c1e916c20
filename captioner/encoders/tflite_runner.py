"""A faster inference path for an encoder: the same Keras graph converted to float32 TFLite.

On a CPU, LiteRT's XNNPACK kernels run Lite0's depthwise convolutions about twice as fast as
Keras, and running them needs neither TensorFlow nor Keras: only converting does. The Keras
model stays the reference (and the one that trains); tests check that both give the same
features.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np

from captioner.machine import cores


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # an environment without LiteRT: TensorFlow's copy, deprecated there
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    return Interpreter


def open_interpreter(path: Path, num_threads: int | None = None):
    """A TFLite interpreter for the file at ``path``, with one thread per core by default."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite's deprecation notice, when it is the fallback
        return _interpreter_class()(model_path=str(path), num_threads=num_threads or cores())


def convert(model, path: Path) -> None:
    """Convert the Keras ``model`` to a float32 .tflite file at ``path`` (atomically)."""
    import tensorflow as tf

    from captioner.files import atomic_write_bytes

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints every captured variable
        blob = converter.convert()
    atomic_write_bytes(path, blob)


class TFLiteRunner:
    """Runs a converted encoder; called like ``Encoder.encode``, returns the same output dict."""

    def __init__(self, path: Path, num_threads: int | None = None):
        self._interpreter = open_interpreter(path, num_threads)
        signature = self._interpreter.get_signature_runner()
        (self._input,) = (d["index"] for d in signature.get_input_details().values())
        details = signature.get_output_details()
        self._outputs = {name: d["index"] for name, d in details.items()}
        self.shapes = {name: tuple(int(n) for n in d["shape"][1:]) for name, d in details.items()}
        self._rows = None  # the batch size the tensors are allocated for

    def __call__(self, batch: np.ndarray, kinds: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """The outputs named in ``kinds`` (all when None): the others are never copied out."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if len(batch) != self._rows:
            self._interpreter.resize_tensor_input(self._input, batch.shape)
            self._interpreter.allocate_tensors()
            self._rows = len(batch)
        self._interpreter.set_tensor(self._input, batch)
        self._interpreter.invoke()
        return {name: self._interpreter.get_tensor(index) for name, index in self._outputs.items()
                if kinds is None or name in kinds}


def runner_for(model, path: Path) -> TFLiteRunner:
    """A runner for the Keras ``model``, converting it to ``path`` first if that file is not there yet."""
    if not Path(path).is_file():
        convert(model, path)
    return TFLiteRunner(path)
