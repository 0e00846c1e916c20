"""A trained model on disk: a folder with ``model.keras``, ``card.json`` and its word lists.

A captioner bundle has ``vocab.json``; a video-tagger bundle has ``tags.json`` and, when it
also captions, ``vocab.json``. The card names the encoder the model was trained on, the data,
the command that made it, the seed and the scores. Loading checks that the parts agree.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import keras

from captioner.errors import BundleError
from captioner.text import Vocabulary

MODEL_FILE, VOCAB_FILE, TAGS_FILE, CARD_FILE = "model.keras", "vocab.json", "tags.json", "card.json"


@dataclass
class Bundle:
    """The parts of a bundle folder."""

    model: keras.Model
    card: dict
    vocab: Vocabulary | None = None
    tags: list[str] | None = None


def save_bundle(folder: Path, bundle: Bundle) -> Path:
    """Write the bundle into a temporary folder beside ``folder``, then swap it in."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        # A fresh, uncompiled copy: the bundle carries weights, not optimizer state.
        model = bundle.model
        clean = type(model).from_config(model.get_config()).build_for()
        clean.set_weights(model.get_weights())
        clean.save(tmp / MODEL_FILE)
        if bundle.vocab is not None:
            bundle.vocab.save(tmp / VOCAB_FILE)
        if bundle.tags is not None:
            (tmp / TAGS_FILE).write_text(json.dumps(list(bundle.tags), indent=1, ensure_ascii=False))
        (tmp / CARD_FILE).write_text(json.dumps(bundle.card, indent=1, ensure_ascii=False))
        tmp.chmod(0o755)  # mkdtemp makes it private; a bundle is an ordinary folder
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: not a readable JSON file ({exc})") from None


def load_bundle(folder: Path) -> Bundle:
    """Read a bundle folder; a missing or inconsistent part raises BundleError."""
    folder = Path(folder)
    missing = [f for f in (MODEL_FILE, CARD_FILE) if not (folder / f).is_file()]
    if missing:
        raise BundleError(f"{folder}: not a captioner bundle (missing {', '.join(missing)})")
    card = _json(folder / CARD_FILE)
    if "encoder" not in card:
        raise BundleError(f"{folder / CARD_FILE}: the card does not name its encoder")
    vocab = Vocabulary.load(folder / VOCAB_FILE) if (folder / VOCAB_FILE).is_file() else None
    tags = _json(folder / TAGS_FILE) if (folder / TAGS_FILE).is_file() else None
    try:
        model = keras.models.load_model(folder / MODEL_FILE, safe_mode=True, compile=False)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a damaged archive
        raise BundleError(f"{folder / MODEL_FILE}: cannot load the model ({exc})") from None
    words = getattr(model, "vocab_size", 0)
    if words and (vocab is None or words != len(vocab)):
        raise BundleError(f"{folder}: the model has {words} words, vocab.json {len(vocab or [])}")
    if getattr(model, "num_tags", 0) and (tags is None or model.num_tags != len(tags)):
        raise BundleError(f"{folder}: the model has {model.num_tags} tags, tags.json {len(tags or [])}")
    return Bundle(model, card, vocab, tags)
