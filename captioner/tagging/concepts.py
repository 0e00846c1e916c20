"""The concept tagger: people, places, things and actions a photo shows, from the encoder's map.

Fang et al. (2015, From captions to visual concepts and back): each word is a detector run on
every cell of the encoder's spatial map (a linear score and a sigmoid per cell), and the photo
shows the word when any cell does: a noisy-OR, P(word) = 1 - prod_cells (1 - p_cell). The
words are the most frequent content words of the training captions (nouns as their lemma,
actions in their "-ing" form: man, dog, water, beach, running, climbing...), so unlike the
ImageNet classes they name people and places. Inference is numpy alone; training is in
``concept_training``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from captioner.errors import CaptionerError

SHIPPED = Path(__file__).resolve().parent / "concepts_lite0.npz"


def noisy_or(logits: np.ndarray) -> np.ndarray:
    """(N, cells, words) per-cell logits -> (N, words) probabilities that some cell shows the word."""
    # log(1 - sigmoid(z)) = -softplus(z): summing logs avoids a product of 49 numbers near 1.
    softplus = np.logaddexp(0.0, logits)
    return -np.expm1(-softplus.sum(axis=1))


class ConceptTagger:
    """Word probabilities from spatial maps: ``words`` and one (channels, words) detector."""

    def __init__(self, words: list[str], kernel: np.ndarray, bias: np.ndarray, encoder: str):
        if kernel.shape != (kernel.shape[0], len(words)) or bias.shape != (len(words),):
            raise CaptionerError(f"concept tagger: {len(words)} words but a kernel of "
                                 f"{kernel.shape} and a bias of {bias.shape}")
        self.words, self.encoder = list(words), encoder
        self.kernel, self.bias = kernel.astype(np.float32), bias.astype(np.float32)

    @classmethod
    def load(cls, path: Path) -> ConceptTagger:
        """Read a tagger written by ``save`` (numpy arrays only, no pickle)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls([str(w) for w in data["words"]], data["kernel"], data["bias"],
                           str(data["encoder"]))
        except (OSError, KeyError, ValueError) as exc:
            raise CaptionerError(f"{path}: not a concept tagger ({exc}); reinstall captioner") from None

    def save(self, path: Path) -> None:
        """Write the tagger (float16 detectors: a quarter of the size, the same rankings)."""
        from captioner.files import atomic_path

        with atomic_path(Path(path), suffix=".npz") as tmp, open(tmp, "wb") as out:
            np.savez_compressed(out, words=np.array(self.words), kernel=self.kernel.astype(np.float16),
                                bias=self.bias, encoder=np.array(self.encoder))

    def probabilities(self, maps: np.ndarray) -> np.ndarray:
        """(N, cells, channels) spatial maps -> (N, words) probabilities."""
        maps = np.asarray(maps, dtype=np.float32)
        if maps.ndim != 3 or maps.shape[2] != self.kernel.shape[0]:
            raise CaptionerError(f"the concept tagger reads (N, cells, {self.kernel.shape[0]}) "
                                 f"maps of {self.encoder}, got {maps.shape}")
        return noisy_or(maps @ self.kernel + self.bias)


@lru_cache(maxsize=1)
def shipped_tagger() -> ConceptTagger:
    """The concept tagger that ships with the package (EfficientNet-Lite0 maps)."""
    if not SHIPPED.is_file():
        raise CaptionerError(f"the concept tagger is missing from {SHIPPED}; reinstall captioner")
    return ConceptTagger.load(SHIPPED)
