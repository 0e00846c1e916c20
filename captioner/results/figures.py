"""Pictures of results: a photo with each caption word's attention as a heat map (Xu et al.'s
figures), drawn with Pillow alone so that writing them needs no plotting library."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PANEL = 224  # side of one panel, the encoder's view of the photo
COLUMNS = 5
LABEL = 22  # pixels under a panel for its word


def attention_figure(photo: np.ndarray, words: list[str], weights: np.ndarray) -> Image.Image:
    """The photo, then one panel per word: the photo dimmed where the decoder did not look.

    ``weights`` is (words, h, w): each word's attention over the encoder's grid of regions.
    """
    base = Image.fromarray(photo).convert("RGB").resize((PANEL, PANEL), Image.BICUBIC)
    panels = [(base, "(photo)")]
    for word, grid in zip(words, weights):
        heat = np.asarray(grid, dtype=np.float64)
        heat = heat / heat.max() if heat.max() > 0 else heat
        # Smooth upsampling of the coarse grid, as in the paper's figures.
        mask = Image.fromarray(np.uint8(255 * heat)).resize((PANEL, PANEL), Image.BILINEAR)
        dark = Image.new("RGB", base.size, (0, 0, 0))
        lit = Image.composite(base, Image.blend(dark, base, 0.25), mask)
        panels.append((lit, word))
    rows = -(-len(panels) // COLUMNS)
    width = COLUMNS * PANEL if len(panels) > COLUMNS else len(panels) * PANEL
    figure = Image.new("RGB", (width, rows * (PANEL + LABEL)), (255, 255, 255))
    draw, font = ImageDraw.Draw(figure), ImageFont.load_default()
    for i, (panel, word) in enumerate(panels):
        x, y = (i % COLUMNS) * PANEL, (i // COLUMNS) * (PANEL + LABEL)
        figure.paste(panel, (x, y))
        draw.text((x + 4, y + PANEL + 4), word, fill=(0, 0, 0), font=font)
    return figure
