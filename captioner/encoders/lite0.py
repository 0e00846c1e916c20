"""EfficientNet-Lite0 in Keras, with its ImageNet weights read from a PyTorch file.

Lite0 is EfficientNet-B0 made friendly to mobile hardware: ReLU6 instead of swish, no
squeeze-and-excitation, stem and head of fixed width. Padding is TensorFlow's "same" (the
PyTorch weights were converted from the TF original, so this is the native padding).
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from captioner.encoders.layers import PixelNormalization
from captioner.encoders.lite0_weights import INPUT_SIZE, pth_path
from captioner.encoders.pth_reader import read_state_dict
from captioner.errors import EncoderError

BN_EPSILON = 1e-3
# (kernel, stride, expansion, output channels, repeats) per stage.
STAGES = [
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
]
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
NUM_CLASSES = 1000


def _conv_bn(x, filters, kernel, stride, name, activate=True):
    x = keras.layers.Conv2D(
        filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu6")(x) if activate else x


def _block(x, index, kernel, stride, expansion, filters):
    name = f"block{index}"
    inputs = x
    channels = x.shape[-1]
    if expansion != 1:
        x = _conv_bn(x, channels * expansion, 1, 1, f"{name}_expand")
    x = keras.layers.DepthwiseConv2D(
        kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_dw_conv"
    )(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_dw_bn")(x)
    x = keras.layers.ReLU(6.0, name=f"{name}_dw_relu6")(x)
    x = _conv_bn(x, filters, 1, 1, f"{name}_project", activate=False)
    if stride == 1 and channels == filters:
        x = keras.layers.Add(name=f"{name}_add")([inputs, x])
    return x


def build_lite0(with_classifier: bool = True) -> keras.Model:
    """The Lite0 graph: RGB [0, 255] in; spatial map, pooled vector (and class probabilities) out."""
    images = keras.Input((INPUT_SIZE, INPUT_SIZE, 3), name="images")
    x = PixelNormalization(offset=127.0, scale=1.0 / 128.0, name="normalize")(images)
    x = _conv_bn(x, STEM_CHANNELS, 3, 2, "stem")
    index = 0
    for kernel, stride, expansion, filters, repeats in STAGES:
        for r in range(repeats):
            x = _block(x, index, kernel, stride if r == 0 else 1, expansion, filters)
            index += 1
    spatial = _conv_bn(x, HEAD_CHANNELS, 1, 1, "head")
    pooled = keras.layers.GlobalAveragePooling2D(name="pooled")(spatial)
    outputs = {"spatial": spatial, "pooled": pooled}
    if with_classifier:
        outputs["probabilities"] = keras.layers.Dense(
            NUM_CLASSES, activation="softmax", name="classifier"
        )(pooled)
    return keras.Model(images, outputs, name="efficientnet_lite0")


def _bn(state: dict, prefix: str) -> list[np.ndarray]:
    return [state[f"{prefix}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]


def _conv(w: np.ndarray) -> np.ndarray:
    return w.transpose(2, 3, 1, 0)  # OIHW -> HWIO


def _depthwise(w: np.ndarray) -> np.ndarray:
    return w.transpose(2, 3, 0, 1)  # (C, 1, H, W) -> (H, W, C, 1)


def torch_to_keras_weights(state: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Map the PyTorch state dict's names and layouts onto the Keras layers of ``build_lite0``."""
    weights = {
        "stem_conv": [_conv(state["_conv_stem.weight"])],
        "stem_bn": _bn(state, "_bn0"),
        "head_conv": [_conv(state["_conv_head.weight"])],
        "head_bn": _bn(state, "_bn1"),
        "classifier": [state["_fc.weight"].T, state["_fc.bias"]],
    }
    num_blocks = sum(repeats for *_, repeats in STAGES)
    for i in range(num_blocks):
        src, dst = f"_blocks.{i}", f"block{i}"
        if f"{src}._expand_conv.weight" in state:
            weights[f"{dst}_expand_conv"] = [_conv(state[f"{src}._expand_conv.weight"])]
            weights[f"{dst}_expand_bn"] = _bn(state, f"{src}._bn0")
        weights[f"{dst}_dw_conv"] = [_depthwise(state[f"{src}._depthwise_conv.weight"])]
        weights[f"{dst}_dw_bn"] = _bn(state, f"{src}._bn1")
        weights[f"{dst}_project_conv"] = [_conv(state[f"{src}._project_conv.weight"])]
        weights[f"{dst}_project_bn"] = _bn(state, f"{src}._bn2")
    return weights


def load_torch_weights(model: keras.Model, pth_path: Path) -> None:
    """Copy the weights of a Lite0 PyTorch file into ``model``, checking every shape."""
    try:
        weights = torch_to_keras_weights(read_state_dict(pth_path))
    except KeyError as exc:
        raise EncoderError(f"{pth_path}: not an EfficientNet-Lite0 state dict (no {exc})") from None
    for layer_name, arrays in weights.items():
        try:
            layer = model.get_layer(layer_name)
        except ValueError:
            continue  # e.g. the classifier of a model built without one
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if expected != [a.shape for a in arrays]:
            raise EncoderError(
                f"{pth_path}: weights for {layer_name} have shapes "
                f"{[a.shape for a in arrays]}, the model expects {expected}"
            )
        layer.set_weights(arrays)


def load_lite0(weights: str | None, cache: Path | None) -> keras.Model:
    """Lite0 with ImageNet weights (converted once, then read from ``cache``) or random ones
    (``lite0_weights.weights_id`` names them, and refuses others first)."""
    model = build_lite0(with_classifier=True)
    if weights is None:
        return model
    source = pth_path()
    cached = cache / f"{source.stem}.weights.h5" if cache else None
    if cached is not None and cached.is_file():
        model.load_weights(cached)
        return model
    load_torch_weights(model, source)
    if cached is not None:
        from captioner.files import atomic_path

        with atomic_path(cached, suffix=".weights.h5") as tmp:
            model.save_weights(tmp)
    return model
