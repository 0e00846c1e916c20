"""What a result page shows of the files: photo thumbnails and one keyframe per video clip (as
JPEG data URIs), and links to the files relative to the page."""

from __future__ import annotations

import base64
import io
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

import numpy as np
from PIL import Image

from captioner.data.images import as_rgb_array, load_image
from captioner.data.paths import path_from_display
from captioner.errors import CaptionerError, ImageError

log = logging.getLogger(__name__)

PHOTO_SIDE = 256  # longest side of a photo's thumbnail
KEYFRAME_SIDE = 160  # longest side of a clip's keyframe
JPEG_QUALITY = 80
MAX_KEYFRAME_FPS = 4.0  # at least two frames per clip, up to this sampling rate


def jpeg_data_uri(pixels: np.ndarray, side: int) -> str:
    """RGB pixels shrunk to at most ``side`` on their longest side, as a JPEG data URI."""
    image = Image.fromarray(pixels)
    image.thumbnail((side, side), Image.BICUBIC)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def photo_thumbnail(name: str) -> str:
    """The thumbnail of the photo a row names, upright, as a data URI; ImageError if unreadable."""
    # load_image decodes a JPEG at reduced scale, never below the side asked for.
    return jpeg_data_uri(load_image(path_from_display(name), size=PHOTO_SIDE), PHOTO_SIDE)


def photo_size(name: str) -> tuple[int, int]:
    """(width, height) of the photo a row names, upright as its EXIF says (the frame its object
    boxes are in), read from the header alone; ImageError if unreadable."""
    from captioner.data.images import ORIENTATION_TAG

    try:
        with Image.open(path_from_display(name)) as img:
            width, height = img.size
            turned = img.getexif().get(ORIENTATION_TAG, 1) in (5, 6, 7, 8)
    except (OSError, ValueError) as exc:
        raise ImageError(f"{name}: cannot read the photo's size ({exc})") from None
    return (height, width) if turned else (width, height)


def picture_thumbnail(picture: Image.Image | np.ndarray) -> str:
    """The thumbnail of an in-memory picture (PIL image or array), as a data URI."""
    return jpeg_data_uri(as_rgb_array(picture), PHOTO_SIDE)


def clip_keyframes(name: str, times: Sequence[float]) -> list[str | None]:
    """For each time, the data URI of the video's frame nearest it (one decoding pass); None
    for the times no frame was decoded for (the video cannot be read now, or stopped early)."""
    from captioner.data.video import sample_frames  # cv2 and PyAV load only for video pages

    if not times:
        return []
    gaps = np.diff(sorted(times))
    spacing = min([g for g in gaps if g > 0] or [max(times) or 1.0])
    fps = min(MAX_KEYFRAME_FPS, max(0.01, 2.0 / spacing))  # about two frames between targets
    best: list[tuple[float, str | None]] = [(float("inf"), None)] * len(times)
    try:
        for frame in sample_frames(path_from_display(name), fps=fps):
            nearer = [i for i, time in enumerate(times) if abs(frame.time - time) < best[i][0]]
            if nearer:
                uri = jpeg_data_uri(frame.image, KEYFRAME_SIDE)
                for i in nearer:
                    best[i] = (abs(frame.time - times[i]), uri)
    except (CaptionerError, OSError) as exc:  # keep what was found before the failure
        log.warning("%s: keyframes for the page stopped (%s)", name, exc)
    return [uri for _, uri in best]


def relative_url(name: str, folder: Path | None) -> str:
    """A URL for the file a row names, relative to ``folder`` (the page's; None: the working
    folder), its bytes percent-encoded so that non-UTF-8 names still resolve."""
    path = os.path.abspath(path_from_display(name))
    relative = os.path.relpath(path, os.path.abspath(folder or "."))
    return quote(os.fsencode(relative), safe="/")
