"""A trained captioner on disk: a folder with ``model.keras``, ``vocab.json`` and ``card.json``.

The card names the encoder the decoder was trained on, the data, the command that made it,
the seed and the scores. Loading checks the parts are there and consistent.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import keras

from captioner.errors import BundleError
from captioner.models.decoder import CaptionDecoder
from captioner.text import Vocabulary

MODEL_FILE, VOCAB_FILE, CARD_FILE = "model.keras", "vocab.json", "card.json"


def save_bundle(folder: Path, decoder: CaptionDecoder, vocab: Vocabulary, card: dict) -> Path:
    """Write the bundle into a temporary folder beside ``folder``, then swap it in."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        # A fresh, uncompiled copy: the bundle carries weights, not optimizer state.
        clean = CaptionDecoder.from_config(decoder.get_config()).build_for()
        clean.set_weights(decoder.get_weights())
        clean.save(tmp / MODEL_FILE)
        vocab.save(tmp / VOCAB_FILE)
        (tmp / CARD_FILE).write_text(json.dumps(card, indent=1, ensure_ascii=False))
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def load_bundle(folder: Path) -> tuple[CaptionDecoder, Vocabulary, dict]:
    """Read a bundle folder; a missing or inconsistent part raises BundleError."""
    folder = Path(folder)
    missing = [f for f in (MODEL_FILE, VOCAB_FILE, CARD_FILE) if not (folder / f).is_file()]
    if missing:
        raise BundleError(f"{folder}: not a captioner bundle (missing {', '.join(missing)})")
    try:
        card = json.loads((folder / CARD_FILE).read_text())
    except json.JSONDecodeError as exc:
        raise BundleError(f"{folder / CARD_FILE}: not valid JSON ({exc})") from None
    vocab = Vocabulary.load(folder / VOCAB_FILE)
    try:
        decoder = keras.models.load_model(folder / MODEL_FILE, safe_mode=True, compile=False)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a damaged archive
        raise BundleError(f"{folder / MODEL_FILE}: cannot load the model ({exc})") from None
    if decoder.vocab_size != len(vocab):
        raise BundleError(f"{folder}: model has {decoder.vocab_size} words, vocab.json {len(vocab)}")
    if "encoder" not in card:
        raise BundleError(f"{folder / CARD_FILE}: the card does not name its encoder")
    return decoder, vocab, card
