"""The public Python API: what the CLI and the notebooks call."""

from __future__ import annotations

from pathlib import Path

from captioner.encoders import DEFAULT_ENCODER, get_encoder
from captioner.encoders.imagenet import top_k
from captioner.features import extract_features
from captioner.images import expand_paths


def classify(
    paths: list[Path],
    k: int = 5,
    recursive: bool = False,
    encoder: str = DEFAULT_ENCODER,
    progress: bool = True,
) -> list[dict]:
    """ImageNet top-k labels for every image found; unreadable files get an ``error`` entry."""
    enc = get_encoder(encoder)
    if not enc.has_classifier:
        from captioner.errors import EncoderError

        raise EncoderError(f"encoder {encoder} has no ImageNet classifier; use {DEFAULT_ENCODER}")
    files = expand_paths(paths, recursive=recursive)
    result = extract_features(files, enc, kinds=("probabilities",), progress=progress)
    labels = dict(zip(result.paths, top_k(result.features["probabilities"], k)))
    errors = dict(result.errors)
    out = []
    for path in files:
        if path in labels:
            out.append({"image": str(path), "labels": [{"label": n, "score": p} for n, p in labels[path]]})
        else:
            out.append({"image": str(path), "error": errors[path]})
    return out
