"""ImageNet labels for images: the quickest check that an encoder's weights are right."""

from __future__ import annotations

from captioner.checks import number_in
from captioner.data.images import gather_images
from captioner.data.paths import display_path
from captioner.encoders import DEFAULT_ENCODER
from captioner.encoders.features import extract_features, item_name
from captioner.encoders.imagenet import top_k
from captioner.encoders.registry import get_encoder
from captioner.errors import EncoderError


def classify(images, k: int = 5, recursive: bool = False, encoder: str = DEFAULT_ENCODER,
             progress: bool = True) -> list[dict]:
    """ImageNet top-k labels for every image given (paths, folders, PIL images or arrays).

    Rows are ``{"image", "labels": [{"label", "score"}]}``, or ``{"image", "error"}`` for a
    file that cannot be read; a missing path never stops the others.
    """
    k = number_in("top k", k, 1, 1000, integer=True)
    enc = get_encoder(encoder)
    if not enc.has_classifier:
        raise EncoderError(f"encoder {encoder} has no ImageNet classifier; use {DEFAULT_ENCODER}")
    items, problems = gather_images(images, recursive)
    rows = [{"image": display_path(p), "error": reason} for p, reason in problems]
    result = extract_features(items, enc, kinds=("probabilities",), progress=progress)
    labels = dict(zip(result.paths, top_k(result.features["probabilities"], k)))
    errors = dict(result.errors)
    for item in items:
        name = item_name(item)
        rows.append({"image": name, "labels": [{"label": n, "score": s} for n, s in labels[item]]}
                    if item in labels else {"image": name, "error": errors[item]})
    return rows
