"""Image files in, RGB uint8 arrays out: decoding, EXIF orientation, colour modes, size guards."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from captioner.errors import ImageError

# Extensions tried when scanning a folder; the content decides in load_image.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
# About 90 megapixels: far above any camera photo, far below a decompression bomb.
DEFAULT_MAX_PIXELS = 90_000_000


def load_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file into an (H, W, 3) uint8 RGB array, upright as its EXIF says."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: file is empty")
    try:
        with Image.open(path) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise ImageError(
                    f"{path}: {width}x{height} pixels exceeds the limit of {max_pixels} "
                    "(raise max_pixels if the image is genuine)"
                )
            img.seek(0)  # first frame of an animated GIF / multi-page TIFF
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # PIL's own bomb warning: we check above
                img.load()
            return to_rgb(ImageOps.exif_transpose(img))
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file (or a format Pillow cannot read)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{path}: cannot decode image ({exc})") from None


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


def find_images(root: Path, recursive: bool = False) -> list[Path]:
    """Image files in a folder by extension (case-insensitive), sorted; a file is returned as is."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise ImageError(f"{root}: no such file or folder")
    pattern = "**/*" if recursive else "*"
    return sorted(
        p for p in root.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def expand_paths(paths: list[Path], recursive: bool = False) -> list[Path]:
    """Files and folders given by a user, expanded to image files, in order, without repeats."""
    seen: dict[Path, None] = {}
    for path in paths:
        for found in find_images(Path(path), recursive=recursive):
            seen.setdefault(found, None)
    return list(seen)
