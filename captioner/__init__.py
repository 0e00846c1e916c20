"""captioner: describe pictures and videos in words.

The public names are loaded on first use, so ``import captioner`` (and the CLI's argument
parsing) stays free of TensorFlow:

- ``Captioner``: caption images, evaluate, train (``captioner.captioning.captioner``);
- ``VideoTagger`` and ``TagOptions``: tags and captions for video clips (``captioner.video``);
- ``classify``: ImageNet labels for images (``captioner.encoders.classify``);
- ``export``: a captioner as a SavedModel or TFLite files (``captioner.serving``);
- ``TrainConfig``, ``ClipTrainConfig``: the knobs of training runs;
- the errors every user mistake raises, all ``CaptionerError``.
"""

from __future__ import annotations

import importlib

from captioner.errors import (
    BundleError,
    CaptionerError,
    EncoderError,
    FormatError,
    ImageError,
    VideoError,
)

__version__ = "0.1.0"

_LAZY = {
    "Captioner": "captioner.captioning.captioner",
    "TrainConfig": "captioner.captioning.config",
    "VideoTagger": "captioner.video.tagger",
    "TagOptions": "captioner.video.config",
    "ClipTrainConfig": "captioner.video.config",
    "classify": "captioner.encoders.classify",
    "export": "captioner.serving",
}

__all__ = [
    "BundleError",
    "CaptionerError",
    "EncoderError",
    "FormatError",
    "ImageError",
    "VideoError",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'captioner' has no attribute {name!r}")
