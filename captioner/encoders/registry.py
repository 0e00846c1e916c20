"""Pretrained CNN encoders behind one registry: ``get_encoder(name)``."""

from __future__ import annotations

import sys

from captioner.encoders import DEFAULT_ENCODER
from captioner.encoders.base import Encoder, code_digest
from captioner.encoders.keras_apps import BACKBONES, build_keras_backbone
from captioner.encoders.lite0 import INPUT_SIZE as LITE0_SIZE
from captioner.encoders.lite0 import load_lite0
from captioner.errors import EncoderError
from captioner.files import cache_dir

CONVERSION_CODE = ("encoders/lite0.py", "encoders/layers.py", "encoders/pth_reader.py",
                   "encoders/tflite_runner.py")


def list_encoders() -> list[str]:
    """Names accepted by :func:`get_encoder`, the default first."""
    return [DEFAULT_ENCODER, *BACKBONES]


def get_encoder(name: str = DEFAULT_ENCODER, weights: str | None = "imagenet", fast: bool = True) -> Encoder:
    """Load an encoder by name; ``weights=None`` gives random weights (for tests).

    ``fast`` runs inference through a cached TFLite conversion when the encoder has one
    (Lite0 with ImageNet weights); features are the same, within float rounding.
    """
    if name == DEFAULT_ENCODER:
        # Converted weights and the TFLite copy are rebuilt whenever the code that makes them changes.
        folder = cache_dir() / "encoders" / code_digest(*CONVERSION_CODE)
        model, weights_id = load_lite0(weights, folder)
        encoder = Encoder(name, LITE0_SIZE, model, weights_id)
        if fast and weights is not None:
            from captioner.encoders.tflite_runner import runner_for

            path = folder / f"{name}-{weights_id.split(':')[-1]}.tflite"
            if not path.is_file():  # a cold start: say why nothing else shows for a while
                print(f"preparing the {name} encoder for this machine (once, about 30 s)...",
                      file=sys.stderr, flush=True)
            encoder.runner = runner_for(model, path)
        return encoder
    if name in BACKBONES:
        return build_keras_backbone(name, weights)
    raise EncoderError(f"unknown encoder {name!r}; choose one of: {', '.join(list_encoders())}")


__all__ = ["DEFAULT_ENCODER", "Encoder", "get_encoder", "list_encoders"]
