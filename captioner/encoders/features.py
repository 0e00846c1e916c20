"""Image files to encoder features, in batches, with an on-disk cache.

Decoding and resizing run in worker threads while the CNN works on the previous
batch. Each feature is cached under the SHA-256 of the file's bytes, the feature kind and a
fingerprint of everything that makes the numbers: the encoder's name, weights and layer
configuration, and the code that decodes, resizes and encodes. A second run over the same
photos does no CNN work, renamed or copied files are still found, and a change to any of
those gives new features instead of stale ones. Encoders with random weights are never cached:
two of them give different features under the same name.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from captioner.data.images import EncodedImage, InMemoryImage, check_file_size, load_image, resize
from captioner.data.paths import display_path
from captioner.encoders.base import Encoder, code_digest
from captioner.errors import CaptionerError
from captioner.files import atomic_path, atomic_write_text, cache_dir, file_digest
from captioner.machine import cores


@dataclass
class FeatureResult:
    """Features of the images that could be read, in input order, and why the others failed."""

    paths: list[Path]
    features: dict[str, np.ndarray]
    errors: list[tuple[Path, str]] = field(default_factory=list)


# The code whose every change may change the features: decoding and resizing, the network
# definitions, the preprocessing layer and this module's batching.
_FEATURE_CODE = ("data/images.py", "encoders/features.py", "encoders/layers.py",
                 "encoders/lite0.py", "encoders/keras_apps.py", "encoders/base.py",
                 "encoders/pth_reader.py", "encoders/tflite_runner.py")


def cacheable(encoder: Encoder) -> bool:
    """Whether features of this encoder may be reused: only with named, pretrained weights."""
    return bool(encoder.weights_id) and "random" not in encoder.weights_id


def encoder_fingerprint(encoder: Encoder) -> str:
    """A short hash of what makes this encoder's features: weights, layers, code."""
    digest = hashlib.sha256(f"{encoder.name}|{encoder.weights_id}|{encoder.input_size}".encode())
    digest.update(encoder.layers_digest.encode())
    digest.update(code_digest(*_FEATURE_CODE).encode())
    return digest.hexdigest()[:16]


class FeatureCache:
    """One ``.npy`` file per (image content, encoder fingerprint, feature kind)."""

    def __init__(self, encoder: Encoder, root: Path | None = None):
        if not cacheable(encoder):
            raise CaptionerError(f"features of {encoder.name} with {encoder.weights_id} weights "
                                 "cannot be cached: random weights differ from one load to the next")
        tag = f"{encoder.name}-{encoder_fingerprint(encoder)}"
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
        """Store a feature atomically, as ``stored`` gives it."""
        with atomic_path(self.path(digest, kind), suffix=".npy") as tmp:
            np.save(tmp, stored(kind, value), allow_pickle=False)


def stored(kind: str, value: np.ndarray) -> np.ndarray:
    """A feature as the cache keeps it, and as every run uses it, cached or not: spatial maps
    as float16 (half the disk), so that a fresh run decodes the very numbers a cached one
    reads and near ties resolve the same way."""
    return np.asarray(value, np.float16) if kind == "spatial" else value


def extract_features(
    paths: list[Path | InMemoryImage | EncodedImage],
    encoder: Encoder,
    kinds: tuple[str, ...] = ("pooled",),
    batch_size: int = 32,
    cache: FeatureCache | bool = True,
    progress: bool = True,
) -> FeatureResult:
    """Features of ``kinds`` (``pooled``, ``spatial``, ``probabilities``) for each image, in memory.

    Items are files (cached by content) or in-memory images, pixels or encoded bytes (never cached).
    """
    paths = [p if isinstance(p, (InMemoryImage, EncodedImage)) else Path(p) for p in paths]
    errors: dict[int, str] = {}
    found = dict(iter_features(paths, encoder, kinds, batch_size, cache, progress, errors))
    ok = [i for i in range(len(paths)) if i in found]
    stacked = {
        k: np.stack([found[i][k] for i in ok]).astype(np.float32) if ok
        else np.zeros((0, *encoder.outputs[k]), np.float32)
        for k in kinds
    }
    return FeatureResult(
        paths=[paths[i] for i in ok],
        features=stacked,
        errors=[(paths[i], errors[i]) for i in sorted(errors)],
    )


def feature_matrix(paths: list[Path], encoder: Encoder, kind: str, batch_size: int = 32,
                   progress: bool = True) -> FeatureResult:
    """Like :func:`extract_features` for one ``kind``, but the features go to a float16 array
    memory-mapped from the cache folder (spatial maps of thousands of photos do not fit in
    memory; 4,878 Lite0 maps take 0.6 GB on disk). The rows follow the readable files in order;
    a second call over the same files opens the same matrix without reading an image."""
    paths = [Path(p) for p in paths]
    digests = [_digest_or_none(p) for p in paths]
    name = hashlib.sha256("|".join(d or f"?{p}" for d, p in zip(digests, paths)).encode()).hexdigest()
    folder = cache_dir() / "matrices" / f"{encoder.name}-{encoder_fingerprint(encoder)}-{kind}"
    matrix, index = folder / f"{name[:24]}.npy", folder / f"{name[:24]}.json"
    if matrix.is_file() and index.is_file():
        done = json.loads(index.read_text())
        kept = np.load(matrix, mmap_mode="r")
        return FeatureResult([paths[i] for i in done["rows"]], {kind: kept},
                             [(paths[i], reason) for i, reason in done["errors"]])
    errors: dict[int, str] = {}
    folder.mkdir(parents=True, exist_ok=True)
    shape = (len(paths), *encoder.outputs[kind])
    with atomic_path(matrix, suffix=".npy") as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=shape)
        for i, features in iter_features(paths, encoder, (kind,), batch_size, True, progress, errors,
                                         digests):
            out[i] = features[kind]  # each image at its own row, whenever it comes
        rows = [i for i in range(len(paths)) if i not in errors]
        if errors:  # rare: close the gaps, one row at a time
            packed = np.lib.format.open_memmap(f"{tmp}.packed.npy", mode="w+", dtype=np.float16,
                                               shape=(len(rows), *shape[1:]))
            for target, source in enumerate(rows):
                packed[target] = out[source]
            packed.flush()
            del out, packed
            os.replace(f"{tmp}.packed.npy", tmp)
        else:
            out.flush()
            del out
    atomic_write_text(index, json.dumps({"rows": rows, "errors": sorted(errors.items())}))
    return FeatureResult([paths[i] for i in rows], {kind: np.load(matrix, mmap_mode="r")},
                         [(paths[i], errors[i]) for i in sorted(errors)])


def _digest_or_none(path: Path) -> str | None:
    try:
        return file_digest(path)
    except OSError:
        return None


def iter_features(paths: list, encoder: Encoder, kinds: tuple[str, ...], batch_size: int,
                  cache: FeatureCache | bool, progress: bool, errors: dict[int, str],
                  known_digests: list[str | None] | None = None):
    """Yield (index, {kind: feature}) for every image that can be read, in input order, from one
    input pipeline with one progress bar. Failures go to ``errors``.

    Each file is read once, after its size is checked (data.images.MAX_FILE_BYTES bounds the
    memory): its bytes are hashed for the cache and, only when the cache lacks its features,
    decoded from those same bytes. ``known_digests``: the files' hashes when the
    caller has them already (None: unreadable). In-memory images (pixels, or the bytes of an
    ``EncodedImage``) are encoded every time: they have no file to hash, and the workers of a
    distributed engine that send bytes share no cache anyway."""
    unknown = set(kinds) - set(encoder.outputs)
    if unknown:
        raise CaptionerError(
            f"encoder {encoder.name} has no output {sorted(unknown)}; it has {sorted(encoder.outputs)}"
        )
    if cache is True:
        store = FeatureCache(encoder) if cacheable(encoder) else None
    else:
        store = cache or None
    digests: dict[int, str] = {}
    bar = tqdm(total=len(paths), desc=f"encoding ({encoder.name})", unit="img", disable=not progress)
    for indices, images, cached in read_batches(paths, encoder.input_size, batch_size, errors,
                                                _cached_digest(store, kinds, digests, known_digests)):
        fresh = ~cached
        outputs = encoder.encode(images[fresh], kinds) if fresh.any() else {}
        row = 0
        for i, hit in zip(indices, cached):
            features = {k: store.get(digests[i], k) for k in kinds} if hit else {}
            if not hit:
                features, row = {k: stored(k, outputs[k][row]) for k in kinds}, row + 1
                if store is not None and i in digests:
                    for k in kinds:
                        store.put(digests[i], k, features[k])
            elif any(v is None for v in features.values()):  # a damaged cache file: encode again
                pixels = load_image(paths[i], size=encoder.input_size)
                features = {k: stored(k, v[0]) for k, v in encoder.encode(
                    resize(pixels, encoder.input_size)[None], kinds).items()}
            yield i, features
        bar.n = indices[-1] + 1  # input order: everything before the last one is done
        bar.refresh()
    bar.n = len(paths)  # failed files at the end count as done
    bar.close()


def _cached_digest(store: FeatureCache | None, kinds: tuple[str, ...], digests: dict[int, str],
                   known: list[str | None] | None):
    """The check a reader runs on a file before decoding it (``read()`` gives its bytes): record
    their hash, and say whether the cache holds every kind of feature for it (then it is not
    decoded)."""

    def check(i: int, read) -> bool:
        # A hash the caller already made spares the read: a cache hit is then never opened.
        digests[i] = known[i] if known is not None and known[i] else hashlib.sha256(read()).hexdigest()
        return store is not None and all(store.path(digests[i], k).is_file() for k in kinds)

    return check


def read_batches(paths: list, size: int, batch_size: int, errors: dict, cached=None):
    """Yield (indices, uint8 images, cached) batches in input order, read and decoded in parallel
    by worker threads (one per core) while the caller works on the previous batch.

    ``cached(i, read)``, called on each file (``read()`` gives its bytes), may answer True: that
    file is then not decoded (its image is left blank) and its flag in ``cached`` is set. An ``EncodedImage`` is
    decoded from its bytes as the file of its name would be, and never asked about: it is not
    a file. Failures go to ``errors``."""
    blank = np.zeros((size, size, 3), np.uint8)

    def load(i):
        item = paths[i]
        named = Path(item.name) if isinstance(item, EncodedImage) else item  # errors start with it
        try:
            if isinstance(item, InMemoryImage):
                return i, resize(item.pixels, size), 0
            if isinstance(item, EncodedImage):
                return i, resize(load_image(named, size=size, data=item.data), size), 0
            data = []  # the file's bytes, read at most once

            def read() -> bytes:
                data[:] = data or [Path(item).read_bytes()]
                return data[0]

            try:
                check_file_size(item, Path(item).stat().st_size)  # before anything is read
                if cached is not None and cached(i, read):
                    return i, blank, 1
                read()
            except OSError as exc:
                errors[i] = f"cannot read file ({exc.strerror or exc})"
                return i, blank, -1
            return i, resize(load_image(item, size=size, data=data[0]), size), 0
        except CaptionerError as exc:
            errors[i] = str(exc).removeprefix(f"{named}: ")
            return i, blank, -1

    # Two batches read ahead of the one the caller holds; a caller that stops early (an
    # interrupt, an error) cancels what has not started yet.
    pool = ThreadPoolExecutor(cores(), thread_name_prefix="captioner-read")
    ahead: deque = deque()
    order = iter(range(len(paths)))
    try:
        batch: list[tuple[int, np.ndarray, int]] = []
        while True:
            while len(ahead) < 3 * batch_size and (i := next(order, None)) is not None:
                ahead.append(pool.submit(load, i))
            if not ahead:
                break
            i, image, state = ahead.popleft().result()
            if state >= 0:
                batch.append((i, image, state))
            if batch and (len(batch) == batch_size or not ahead):
                indices, images, states = zip(*batch)
                yield list(indices), np.stack(images), np.array(states) == 1
                batch = []
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def encode_images(images: list[np.ndarray], encoder: Encoder, kinds: tuple[str, ...] = ("pooled",),
                  batch_size: int = 32) -> dict[str, np.ndarray]:
    """Encoder outputs for images already decoded and resized to ``encoder.input_size``."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in kinds}
    for start in range(0, len(images), batch_size):
        out = encoder.encode(np.stack(images[start : start + batch_size]), kinds)
        for k in kinds:
            parts[k].append(out[k])
    return {k: np.concatenate(v) if v else np.zeros((0, *encoder.outputs[k]), np.float32)
            for k, v in parts.items()}


def item_name(item: Path | InMemoryImage | EncodedImage) -> str:
    """How an image appears in result rows: its path as printable text, or its in-memory name."""
    return item.name if isinstance(item, (InMemoryImage, EncodedImage)) else display_path(item)


def as_regions(features: np.ndarray) -> np.ndarray:
    """Spatial maps (N, h, w, C) as (N, h * w, C) regions, what an attention decoder reads;
    other features unchanged."""
    return features.reshape(len(features), -1, features.shape[-1]) if features.ndim == 4 else features
