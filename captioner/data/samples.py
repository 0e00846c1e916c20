"""Real photos that ship with the install (scikit-image's sample data), for demos and defaults."""

from __future__ import annotations

from pathlib import Path

from captioner.errors import CaptionerError

# Colour photographs among scikit-image's bundled files (the rest are textures and diagrams).
SAMPLE_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png")


def sample_photos() -> list[Path]:
    """Paths of a few real photos bundled with scikit-image: an astronaut, a cat, a coffee..."""
    try:
        import skimage.data
    except ImportError:
        raise CaptionerError("the sample photos need scikit-image: pip install scikit-image") from None
    folder = Path(skimage.data.__file__).parent
    return [folder / name for name in SAMPLE_PHOTOS if (folder / name).is_file()]
