"""Synthetic clips of moving shapes, for tests, benchmarks and notebooks.

Each clip shows one shape of one colour doing one motion. The motion tags can only be told
from the ORDER of the frames: a clip played backwards shows the same frames with the
opposite motion (left/right, growing/shrinking, appearing/disappearing), so a model that
pools frames without order is at chance on them. Shape and colour tags are order-free.
The background brightens from left to right, like a stage lit from one side, which gives
the encoder's pooled features a cue for where the shape is.
"""

from __future__ import annotations

import cv2
import numpy as np

SHAPES = ("circle", "square")
COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 70, 230)}
MOTIONS = ("moving left", "moving right", "growing", "shrinking", "appearing", "disappearing")
REVERSED = {"moving left": "moving right", "growing": "shrinking", "appearing": "disappearing"}
REVERSED |= {v: k for k, v in REVERSED.items()}
TAGS = (*MOTIONS, *SHAPES, *COLOURS)


def _draw(size: int, shape: str, colour: str, x: float, radius: float) -> np.ndarray:
    img = np.repeat(np.linspace(50, 200, size, dtype=np.uint8)[None, :, None], 3, axis=2)
    img = np.ascontiguousarray(np.repeat(img, size, axis=0))
    if radius >= 1:
        centre, r = (int(x + 0.5), size // 2), int(radius + 0.5)
        if shape == "circle":
            cv2.circle(img, centre, r, COLOURS[colour], -1)
        else:
            cv2.rectangle(img, (centre[0] - r, centre[1] - r), (centre[0] + r, centre[1] + r), COLOURS[colour], -1)
    return img


def shape_clip(motion: str, shape: str, colour: str, frames: int = 8, size: int = 96,
               jitter: float = 0.0, rng: np.random.Generator | None = None) -> list[np.ndarray]:
    """The frames (RGB uint8) of one clip; ``motion`` is one of MOTIONS."""
    rng = rng or np.random.default_rng(0)
    t = np.linspace(0.0, 1.0, frames)
    base = size * (0.16 + 0.04 * rng.uniform(-1, 1) * jitter)
    if motion in ("moving left", "moving right"):
        start, end = size * 0.2, size * 0.8
        xs = start + (end - start) * (t if motion == "moving right" else 1 - t)
        radii = np.full(frames, base)
    else:
        grow = t if motion in ("growing", "appearing") else 1 - t
        xs = np.full(frames, size / 2 + size * 0.1 * rng.uniform(-1, 1) * jitter)
        radii = base * (0.3 + 1.2 * grow) if motion in ("growing", "shrinking") else base * 1.2 * (grow > 0.45)
    return [_draw(size, shape, colour, x, r) for x, r in zip(xs, radii)]


def shape_clips(pairs: int, frames: int = 8, size: int = 96, seed: int = 0):
    """``2 * pairs`` clips as (frames, tags): each clip followed by itself played backwards."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(pairs):
        motion = MOTIONS[i % len(MOTIONS)]
        shape, colour = SHAPES[rng.integers(len(SHAPES))], list(COLOURS)[rng.integers(len(COLOURS))]
        clip = shape_clip(motion, shape, colour, frames, size, jitter=1.0, rng=rng)
        out.append((clip, (motion, shape, colour)))
        out.append((clip[::-1], (REVERSED[motion], shape, colour)))
    return out

