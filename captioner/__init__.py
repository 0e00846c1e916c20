"""captioner: describe pictures and videos in words."""

from captioner.errors import (
    BundleError,
    CaptionerError,
    EncoderError,
    FormatError,
    ImageError,
    VideoError,
)

__version__ = "0.1.0"

__all__ = [
    "BundleError",
    "CaptionerError",
    "EncoderError",
    "FormatError",
    "ImageError",
    "VideoError",
]
