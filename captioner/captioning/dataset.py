"""A caption data set on disk (caption file + image folder) as features and references per split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from captioner.data.caption_sets import (
    CaptionRecord,
    group_by_image,
    in_splits,
    outside_folder,
    read_captions,
)
from captioner.encoders.base import Encoder
from captioner.encoders.features import as_regions, cacheable, extract_features, feature_matrix
from captioner.errors import FormatError


@dataclass
class Split:
    """The images of one split that could be read, their features and their captions."""

    names: list[str]
    paths: list[Path]
    features: np.ndarray
    captions: list[list[str]]


def load_split(records: list[CaptionRecord], images: Path, encoder: Encoder,
               splits: tuple[str | None, ...], progress: bool = True,
               kind: str = "pooled") -> tuple[Split, list[str]]:
    """Features (``kind``: pooled vectors, or spatial maps flattened to (regions, channels)) of
    the split's images found in ``images``; also returns the problems met (an image missing,
    unreadable, or named outside ``images``: records may come from anywhere, not only a reader)."""
    grouped = group_by_image(r for r in records if in_splits(r, splits))
    problems, names = [], []
    for name in grouped:
        if reason := outside_folder(name):
            problems.append(f"{name}: {reason}")
        elif not (images / name).is_file():
            problems.append(f"{name}: image not found in {images}")
        else:
            names.append(name)
    files = [images / n for n in names]
    if kind == "spatial" and cacheable(encoder):  # maps stay on disk, memory-mapped
        result = feature_matrix(files, encoder, kind, progress=progress)
    else:
        result = extract_features(files, encoder, kinds=(kind,), progress=progress)
    problems += [f"{path}: {reason}" for path, reason in result.errors]
    name_of = {images / n: n for n in names}
    names = [name_of[p] for p in result.paths]
    features = as_regions(result.features[kind])
    return Split(names, result.paths, features, [grouped[n] for n in names]), problems


def read_records(path: Path) -> list[CaptionRecord]:
    """All caption records of a caption file (any supported format); malformed lines are skipped."""
    records = list(read_captions(path))
    if not records:
        raise FormatError(f"{path}: no captions found")
    return records
