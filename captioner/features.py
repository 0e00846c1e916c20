"""Image files to encoder features, in batches, with an on-disk cache.

Decoding and resizing run in tf.data worker threads while the CNN works on the previous
batch. Each feature is cached under the SHA-256 of the file's bytes plus the encoder's name,
its weights and the feature kind, so a second run over the same photos does no CNN work,
and renamed or copied files are still found.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from captioner.encoders.base import Encoder
from captioner.errors import CaptionerError
from captioner.files import atomic_path, cache_dir, file_digest
from captioner.images import load_image, resize


@dataclass
class FeatureResult:
    """Features of the images that could be read, in input order, and why the others failed."""

    paths: list[Path]
    features: dict[str, np.ndarray]
    errors: list[tuple[Path, str]] = field(default_factory=list)
    encoded: int = 0  # images that went through the CNN (the rest came from the cache)


class FeatureCache:
    """One ``.npy`` file per (image content, encoder, weights, feature kind)."""

    def __init__(self, encoder: Encoder, root: Path | None = None):
        tag = f"{encoder.name}-{encoder.weights_id}".replace(":", "_").replace("/", "_")
        self.root = Path(root or cache_dir() / "features") / tag

    def path(self, digest: str, kind: str) -> Path:
        """Where the feature of this kind for this file content lives."""
        return self.root / kind / digest[:2] / f"{digest}.npy"

    def get(self, digest: str, kind: str) -> np.ndarray | None:
        """The cached feature, or None."""
        path = self.path(digest, kind)
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None  # absent, or half-written by a crashed writer of an old version

    def put(self, digest: str, kind: str, value: np.ndarray) -> None:
        """Store a feature atomically."""
        with atomic_path(self.path(digest, kind), suffix=".npy") as tmp:
            np.save(tmp, value, allow_pickle=False)


def extract_features(
    paths: list[Path],
    encoder: Encoder,
    kinds: tuple[str, ...] = ("pooled",),
    batch_size: int = 32,
    cache: FeatureCache | bool = True,
    progress: bool = True,
) -> FeatureResult:
    """Features of ``kinds`` (``pooled``, ``spatial``, ``probabilities``) for each image file."""
    unknown = set(kinds) - set(encoder.model.output)
    if unknown:
        raise CaptionerError(
            f"encoder {encoder.name} has no output {sorted(unknown)}; it has {sorted(encoder.model.output)}"
        )
    store = FeatureCache(encoder) if cache is True else (cache or None)
    paths = [Path(p) for p in paths]
    errors: dict[int, str] = {}
    digests: dict[int, str] = {}
    found: dict[int, dict[str, np.ndarray]] = {}
    for i, path in enumerate(paths):
        try:
            digests[i] = file_digest(path)
        except OSError as exc:
            errors[i] = f"cannot read file ({exc.strerror or exc})"
            continue
        if store is not None:
            hits = {k: store.get(digests[i], k) for k in kinds}
            if all(v is not None for v in hits.values()):
                found[i] = hits
    todo = [i for i in digests if i not in found]
    bar = tqdm(total=len(paths), desc=f"encoding ({encoder.name})", unit="img", disable=not progress)
    bar.update(len(paths) - len(todo))
    for indices, outputs in _encode_files(paths, todo, encoder, batch_size, errors):
        for row, i in enumerate(indices):
            found[i] = {k: outputs[k][row] for k in kinds}
            if store is not None:
                for k in kinds:
                    store.put(digests[i], k, found[i][k])
        bar.update(len(indices))
    bar.update(len(todo) - sum(1 for i in todo if i in found))  # failed files count as done
    bar.close()
    ok = [i for i in range(len(paths)) if i in found]
    stacked = {
        k: np.stack([found[i][k] for i in ok]) if ok else np.zeros((0, *_shape(encoder, k)), np.float32)
        for k in kinds
    }
    return FeatureResult(
        paths=[paths[i] for i in ok],
        features=stacked,
        errors=[(paths[i], errors[i]) for i in sorted(errors)],
        encoded=sum(1 for i in todo if i in found),
    )


def _shape(encoder: Encoder, kind: str) -> tuple[int, ...]:
    return tuple(int(d) for d in encoder.model.output[kind].shape[1:])


def decode_batches(paths: list[Path], indices: list[int], size: int, batch_size: int, errors: dict):
    """Yield (indices, uint8 images) batches, decoded in parallel by tf.data; failures go to ``errors``."""
    import tensorflow as tf

    def load(i):
        i = int(i)
        try:
            return i, resize(load_image(paths[i]), size), True
        except CaptionerError as exc:
            errors[i] = str(exc).removeprefix(f"{paths[i]}: ")
            return i, np.zeros((size, size, 3), np.uint8), False

    def load_tf(i):
        index, image, ok = tf.numpy_function(load, [i], (tf.int64, tf.uint8, tf.bool), stateful=True)
        image.set_shape((size, size, 3))
        return index, image, ok

    dataset = (
        tf.data.Dataset.from_tensor_slices(np.asarray(indices, dtype=np.int64))
        .map(load_tf, num_parallel_calls=2, deterministic=True)
        .filter(lambda _i, _img, ok: ok)
        .map(lambda i, img, _ok: (i, img))
        .batch(batch_size)
        .prefetch(2)
    )
    options = tf.data.Options()
    options.threading.private_threadpool_size = 2  # decoders get their own threads, no more
    options.autotune.enabled = False
    dataset = dataset.with_options(options)
    for batch_indices, images in dataset.as_numpy_iterator():
        yield [int(i) for i in batch_indices], images


def _encode_files(paths, indices, encoder, batch_size, errors):
    if not indices:
        return
    for batch_indices, images in decode_batches(paths, indices, encoder.input_size, batch_size, errors):
        yield batch_indices, encoder.encode(images)


def encode_images(images: list[np.ndarray], encoder: Encoder, kinds: tuple[str, ...] = ("pooled",),
                  batch_size: int = 32) -> dict[str, np.ndarray]:
    """Encoder outputs for images already decoded and resized to ``encoder.input_size``."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in kinds}
    for start in range(0, len(images), batch_size):
        out = encoder.encode(np.stack(images[start : start + batch_size]))
        for k in kinds:
            parts[k].append(out[k])
    return {k: np.concatenate(v) if v else np.zeros((0, *_shape(encoder, k)), np.float32)
            for k, v in parts.items()}
