"""Image files in, RGB uint8 arrays out: decoding, EXIF orientation, colour modes, size guards."""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from captioner.data.paths import IMAGE_EXTENSIONS, Problem, expand_paths
from captioner.errors import ImageError

ORIENTATION_TAG = 0x0112
# EXIF orientation -> the transpose that makes the picture upright (as ImageOps.exif_transpose).
_UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
            4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
            6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}
# About 90 megapixels: far above any camera photo, far below a decompression bomb.
DEFAULT_MAX_PIXELS = 90_000_000
# Bytes a photo file may have: a 90-megapixel photo compresses to tens of MB, and a file is
# read whole (to hash and decode it), so anything bigger is refused before it is read.
MAX_FILE_BYTES = 256 << 20


def check_file_size(name, size: int) -> None:
    """ImageError naming the file when ``size`` bytes are too many for one photo."""
    if size > MAX_FILE_BYTES:
        raise ImageError(f"{name}: file too large ({size / 2**20:.0f} MB; a photo file may have at "
                         f"most {MAX_FILE_BYTES / 2**20:.0f} MB)")


def load_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS, size: int | None = None,
               data: bytes | None = None) -> np.ndarray:
    """Read an image file into an (H, W, 3) uint8 RGB array, upright as its EXIF says.

    With ``size`` (the encoder's input side) a large image is decoded at reduced scale, never
    below ``size`` on either side: JPEG by DCT scaling (``draft``), other formats reduced by a
    whole factor right after decoding, before any copy, so memory stays near one decode.
    ``data``: the file's bytes, when the caller has read them already (to hash them): they are
    decoded and the file is not read again.
    """
    path = Path(path)
    if data is None and not path.is_file():
        raise ImageError(f"{path}: no such file")
    nbytes = path.stat().st_size if data is None else len(data)
    if nbytes == 0:
        raise ImageError(f"{path}: file is empty")
    check_file_size(path, nbytes)
    try:
        with Image.open(path if data is None else io.BytesIO(data)) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise ImageError(
                    f"{path}: {width}x{height} pixels exceeds the limit of {max_pixels} "
                    "(raise max_pixels if the image is genuine)"
                )
            img.seek(0)  # first frame of an animated GIF / multi-page TIFF
            if size and img.format == "JPEG":
                img.draft(img.mode, (size, size))  # scale >= size on both sides
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # PIL's own bomb warning: we check above
                img.load()
            orientation = img.getexif().get(ORIENTATION_TAG, 1)
            factor = min(img.size) // size if size else 1
            if factor >= 2:
                img = _reduce(img, factor)  # a box filter; the copy has no EXIF, hence above
            turn = _UPRIGHT.get(orientation)
            return to_rgb(img.transpose(turn) if turn is not None else img)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file (or a format Pillow cannot read)") from None
    except MemoryError:
        raise ImageError(f"{path}: too large to decode in the memory available") from None
    except Exception as exc:  # noqa: BLE001 - decoders raise many types for broken files
        raise ImageError(f"{path}: cannot decode image ({type(exc).__name__}: {exc})") from None


def _reduce(img: Image.Image, factor: int) -> Image.Image:
    """Pillow's reduce, for the modes it has no kernel for too (palette, 1-bit, 16-bit)."""
    if img.mode in ("P", "PA"):
        return img.convert("RGBA" if img.mode == "PA" or "transparency" in img.info else "RGB").reduce(factor)
    if img.mode == "1":
        return img.convert("L").reduce(factor)
    if img.mode.startswith("I;16"):  # back to 16 bits after, so the grey scale stays 0..65535
        return img.convert("I").reduce(factor).convert("I;16")
    return img.reduce(factor)


def to_rgb(img: Image.Image) -> np.ndarray:
    """Convert any Pillow mode to RGB uint8; transparency is composited on white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit grey: scale the real range down to 8 bits instead of clipping.
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") else max(float(arr.max()), 1.0)
        grey = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa"):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(canvas, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """Resize an RGB uint8 array to size x size (bicubic, aspect ratio not kept, as in training)."""
    if image.shape[0] == size and image.shape[1] == size:
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.BICUBIC), dtype=np.uint8)


@dataclass(frozen=True, eq=False)
class InMemoryImage:
    """An image passed as pixels (a PIL image or an array) rather than a file, with a name."""

    name: str
    pixels: np.ndarray  # (H, W, 3) uint8 RGB


@dataclass(frozen=True, eq=False)
class EncodedImage:
    """An image file's bytes read elsewhere (a distributed engine's file system: ``gs://``,
    ``s3://``), with the name its rows carry. Decoded as the file with that name would be."""

    name: str
    data: bytes


def as_rgb_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """A PIL image or an (H, W), (H, W, 1|3|4) array as (H, W, 3) uint8 RGB."""
    if isinstance(image, Image.Image):
        return to_rgb(image)
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageError(f"an image array must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); "
                         f"got shape {array.shape}")
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.number):
            raise ImageError(f"an image array must hold numbers, got {array.dtype}")
        # Floats in [0, 1] are the other common convention; anything else is clipped to bytes.
        top = 255.0 if array.dtype.kind != "f" or array.max(initial=0) > 1.0 else 1.0
        array = np.clip(array.astype(np.float64) * (255.0 / top) + 0.5, 0, 255).astype(np.uint8)
    if array.ndim == 2:
        return np.repeat(array[..., None], 3, axis=-1)
    return to_rgb(Image.fromarray(array)) if array.shape[2] == 4 else array


def gather_images(images, recursive: bool = False) -> tuple[list[Path | InMemoryImage], list[Problem]]:
    """What a user passes as images, as files and in-memory images, plus the problems met.

    Takes one path (``str`` or ``Path``: one image or folder, never its characters), a PIL
    image, a numpy array (one (H, W[, C]) image or an (N, H, W, C) batch), or a list of these.
    """
    if isinstance(images, (str, os.PathLike, Image.Image)):
        images = [images]
    elif isinstance(images, np.ndarray):
        images = list(images) if images.ndim == 4 else [images]
    items: list[Path | InMemoryImage] = []
    problems: list[Problem] = []
    seen: set[str] = set()  # files already taken, by their real path
    for i, image in enumerate(images):
        if isinstance(image, (str, os.PathLike)):
            files, more = expand_paths([image], IMAGE_EXTENSIONS, recursive)
            for found in files:
                if os.path.realpath(found) not in seen:
                    seen.add(os.path.realpath(found))
                    items.append(found)
            problems += more
        elif isinstance(image, (Image.Image, np.ndarray)):
            items.append(InMemoryImage(f"<image {i}>", as_rgb_array(image)))
        else:
            raise ImageError(f"cannot use a {type(image).__name__} as an image; pass a path, "
                             "a PIL image or a numpy array")
    return items, problems
