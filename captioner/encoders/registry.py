"""Pretrained CNN encoders behind one registry: ``get_encoder(name)``."""

from __future__ import annotations

import json
import sys

from captioner.encoders import DEFAULT_ENCODER
from captioner.encoders import lite0_weights
from captioner.encoders.base import Encoder, code_digest
from captioner.errors import EncoderError
from captioner.files import atomic_write_text, cache_dir

CONVERSION_CODE = ("encoders/lite0.py", "encoders/lite0_weights.py", "encoders/layers.py",
                   "encoders/pth_reader.py", "encoders/tflite_runner.py")


def list_encoders() -> list[str]:
    """Names accepted by :func:`get_encoder`, the default first."""
    from captioner.encoders.keras_apps import BACKBONES  # the Keras path, imported when asked for

    return [DEFAULT_ENCODER, *BACKBONES]


def get_encoder(name: str = DEFAULT_ENCODER, weights: str | None = "imagenet", fast: bool = True) -> Encoder:
    """Load an encoder by name; ``weights=None`` gives random weights (for tests).

    ``fast`` runs inference through a cached TFLite conversion when the encoder has one
    (Lite0 with ImageNet weights); features are the same, within float rounding. Once that
    file exists, loading the encoder needs neither TensorFlow nor Keras.
    """
    if name == DEFAULT_ENCODER:
        return _lite0(weights, fast)
    from captioner.encoders.keras_apps import BACKBONES, build_keras_backbone

    if name in BACKBONES:
        return build_keras_backbone(name, weights)
    raise EncoderError(f"unknown encoder {name!r}; choose one of: {', '.join(list_encoders())}")


def _lite0(weights: str | None, fast: bool) -> Encoder:
    from captioner.encoders import tflite_runner

    # Converted weights and the TFLite copy are rebuilt whenever the code that makes them changes.
    folder = cache_dir() / "encoders" / code_digest(*CONVERSION_CODE)
    weights_id = lite0_weights.weights_id(weights)

    def build():
        from captioner.encoders.lite0 import load_lite0

        return load_lite0(weights, folder)

    size = lite0_weights.INPUT_SIZE
    if not fast or weights is None:
        return Encoder(DEFAULT_ENCODER, size, build(), weights_id)
    path = folder / f"{DEFAULT_ENCODER}-{weights_id.split(':')[-1]}.tflite"
    about = path.with_suffix(".json")  # what the file was made from: the layers' digest
    if path.is_file() and about.is_file():
        runner = tflite_runner.TFLiteRunner(path)
        return Encoder(DEFAULT_ENCODER, size, None, weights_id, runner, outputs=runner.shapes,
                       layers_digest=json.loads(about.read_text())["layers_digest"], build=build)
    if not path.is_file():  # a cold start: say why nothing else shows for a while
        print(f"preparing the {DEFAULT_ENCODER} encoder for this machine (once, about 30 s)...",
              file=sys.stderr, flush=True)
    encoder = Encoder(DEFAULT_ENCODER, size, build(), weights_id)
    encoder.runner = tflite_runner.runner_for(encoder.model, path)
    atomic_write_text(about, json.dumps({"layers_digest": encoder.layers_digest}))
    return encoder


__all__ = ["DEFAULT_ENCODER", "Encoder", "get_encoder", "list_encoders"]
