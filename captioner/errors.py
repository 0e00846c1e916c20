"""The project's exception types: every error a user can cause is one of these."""


class CaptionerError(Exception):
    """Base class: the CLI prints the message of any of these and exits non-zero."""


class ImageError(CaptionerError):
    """An image file that cannot be used (missing, empty, truncated, not an image, too big)."""


class VideoError(CaptionerError):
    """A video file that cannot be opened or decoded."""


class EncoderError(CaptionerError):
    """An unknown encoder name, or weights that cannot be had (offline, unsafe, mismatched)."""


class FormatError(CaptionerError):
    """A caption or annotation file in a format the toolkit cannot read."""


class BundleError(CaptionerError):
    """A model bundle folder that is missing parts or was made for another encoder."""
