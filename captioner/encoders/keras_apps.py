"""Backbones from keras.applications, wrapped as Encoders.

Their ImageNet weights are downloaded by Keras on first use. Offline, Keras fails with a bare
exception; we turn it into an EncoderError that names the file and where to put it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from captioner.encoders.base import Encoder
from captioner.errors import EncoderError

# name: (constructor, input size, preprocessing inside our graph or None if Keras has its own).
# Caffe-style ResNet: RGB is flipped to BGR first, so the means are in B, G, R order.
BACKBONES = {
    "mobilenet_v3_small": ("MobileNetV3Small", 224, None),
    "mobilenet_v3_large": ("MobileNetV3Large", 224, None),
    "efficientnet_b0": ("EfficientNetB0", 224, None),
    "inception_v3": ("InceptionV3", 299, {"offset": 127.5, "scale": 1 / 127.5}),
    "resnet50": (
        "ResNet50",
        224,
        {"offset": [103.939, 116.779, 123.68], "scale": 1.0, "reverse_channels": True},
    ),
}


def keras_models_dir() -> Path:
    """Where Keras looks for downloaded weights."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


def build_keras_backbone(name: str, weights: str | None) -> Encoder:
    """A keras.applications backbone without its top, as an Encoder."""
    import keras

    from captioner.encoders.layers import PixelNormalization

    constructor, size, norm = BACKBONES[name]
    kwargs = {"include_top": False, "weights": weights, "input_shape": (size, size, 3)}
    if norm is None and name.startswith("mobilenet_v3"):
        kwargs["include_preprocessing"] = True  # EfficientNetB0 always rescales internally
    try:
        backbone = getattr(keras.applications, constructor)(**kwargs)
    except Exception as exc:  # noqa: BLE001 - Keras raises a bare Exception when a download fails
        raise _download_error(name, exc) from None
    images = keras.Input((size, size, 3), name="images")
    x = PixelNormalization(**norm, name="normalize")(images) if norm else images
    spatial = backbone(x)
    pooled = keras.layers.GlobalAveragePooling2D(name="pooled")(spatial)
    model = keras.Model(images, {"spatial": spatial, "pooled": pooled}, name=name)
    weights_id = f"keras-applications:{constructor}:{weights or 'random'}"
    return Encoder(name=name, input_size=size, model=model, weights_id=weights_id)


def _download_error(name: str, exc: Exception) -> EncoderError:
    match = re.search(r"https?://\S+?\.h5", str(exc))
    if not match:
        return EncoderError(f"encoder {name}: could not load its ImageNet weights ({exc})")
    url = match.group(0)
    target = keras_models_dir() / url.rsplit("/", 1)[-1]
    return EncoderError(
        f"encoder {name}: Keras could not download its ImageNet weights (offline?). "
        f"Download {url} on a connected machine and put it at {target}, "
        "or use the default encoder efficientnet_lite0, which needs no download."
    )
