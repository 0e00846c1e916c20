"""A trained model on disk: a folder with ``model.keras``, ``card.json`` and its word lists.

A captioner bundle has ``vocab.json`` (an ensemble also ``members/1.keras``, ``2.keras``...:
decoders of the same vocabulary decoded together); a video-tagger bundle has ``tags.json`` and, when it
also captions, ``vocab.json``. The card names the encoder the model was trained on, the data,
the command that made it, the seed and the scores. Loading checks that the parts agree.

Saving never deletes a folder the toolkit did not write: the target must be new, empty, a
bundle, or a bundle still in training (its ``checkpoints``). The new bundle is written beside
it and swapped in, so a crash leaves the old bundle or the new one, never half of each.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from captioner.data.text import Vocabulary
from captioner.errors import BundleError
from captioner.files import finite, json_text, read_json

MODEL_FILE, VOCAB_FILE, TAGS_FILE, CARD_FILE = "model.keras", "vocab.json", "tags.json", "card.json"
STEP_FILE = "model.step.json"  # a caption decoder's plain weights (captioner.captioning.plain_weights)
CHECKPOINTS = "checkpoints"  # where training keeps its checkpoints until the bundle is written
MEMBERS = "members"  # an ensemble's decoders after the first, as 1.keras, 2.keras...
BUNDLE_ENTRIES = {MODEL_FILE, STEP_FILE, VOCAB_FILE, TAGS_FILE, CARD_FILE, CHECKPOINTS, MEMBERS}


@dataclass
class Bundle:
    """The parts of a bundle folder."""

    model: object  # a keras.Model; None when read without its models (see load_bundle)
    card: dict
    vocab: Vocabulary | None = None
    tags: list[str] | None = None
    members: list = field(default_factory=list)  # an ensemble's other decoders
    files: list[Path] = field(default_factory=list)  # the model files, the first one's first


def make_card(encoder, config, command: str | None, data: dict, problems: list[str], **more) -> dict:
    """The card of a freshly trained bundle: encoder, data, command, config, problems, then ``more``."""
    return {"encoder": encoder.name, "encoder_weights": encoder.weights_id, "data": data,
            "command": command, "config": asdict(config), **more, "problems": problems[:50]}


def card_digest(card: dict) -> str:
    """A short hash that names a model by its card (outputs record which model made them); the
    card as written (NaN as null), so a model names itself alike before and after a save."""
    text = json.dumps(finite(card), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_target(folder: Path) -> Path:
    """The real path of ``folder`` if a bundle may be written there; BundleError before any
    work if not (a foreign folder, the working folder, a place that cannot be written)."""
    folder = Path(os.path.realpath(folder))  # a link to a bundle: the bundle is replaced
    here = Path.cwd().resolve()
    if folder == here or folder in here.parents:
        raise BundleError(f"{folder}: is the folder you are working in (or holds it); a bundle "
                          "replaces its folder, so name a new sub-folder")
    if folder.exists() and not folder.is_dir():
        raise BundleError(f"{folder}: is a file; a bundle is a folder, choose another --out")
    if folder.is_dir():
        try:
            entries = {p.name for p in folder.iterdir()}
        except OSError as exc:
            raise BundleError(f"{folder}: cannot be listed ({exc.strerror})") from None
        if entries - BUNDLE_ENTRIES:
            extra = sorted(entries - BUNDLE_ENTRIES)[:3]
            raise BundleError(
                f"{folder}: is not empty and is not a captioner bundle (it holds {', '.join(extra)}"
                f"...); a bundle replaces its folder, so choose a new or empty folder")
    try:  # the swap writes beside the folder: prove that possible now, not after training
        folder.parent.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryDirectory(prefix=f".{folder.name}.", dir=folder.parent).cleanup()
    except OSError as exc:
        raise BundleError(f"{folder}: cannot write a bundle there ({exc.strerror or exc})") from None
    return folder


def save_bundle(folder: Path, bundle: Bundle) -> Path:
    """Write the bundle into a temporary folder beside ``folder``, then swap it in."""
    folder = check_target(Path(folder))
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.new.", dir=folder.parent))
    old = None
    try:
        _save_clean(bundle.model, tmp / MODEL_FILE)
        for i, member in enumerate(bundle.members, start=1):
            (tmp / MEMBERS).mkdir(exist_ok=True)
            _save_clean(member, tmp / MEMBERS / f"{i}.keras")
        if bundle.vocab is not None:
            bundle.vocab.save(tmp / VOCAB_FILE)
        if bundle.tags is not None:
            (tmp / TAGS_FILE).write_text(json_text(list(bundle.tags)), encoding="utf-8")
        (tmp / CARD_FILE).write_text(json_text(bundle.card), encoding="utf-8")
        tmp.chmod(0o755)  # mkdtemp makes it private; a bundle is an ordinary folder
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", dir=folder.parent))
            os.replace(folder, old)  # the (checked) old bundle steps aside...
        try:
            os.replace(tmp, folder)  # ...and the new one takes its name
        except OSError:
            if old is not None:
                os.replace(old, folder)
                old = None
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return folder


def _save_clean(model, path: Path) -> None:
    """A fresh, uncompiled copy: the bundle carries weights, not optimizer state; a caption
    decoder's also as plain arrays, so that captioning needs no Keras."""
    clean = type(model).from_config(model.get_config()).build_for()
    clean.set_weights(model.get_weights())
    clean.save(path)
    if hasattr(clean, "embedding"):  # a caption decoder (a clip model has none)
        from captioner.captioning.plain_weights import write_index

        write_index(path, clean)


def load_bundle(folder: Path, models: bool = True) -> Bundle:
    """Read a bundle folder; a missing or inconsistent part raises BundleError. Without
    ``models``, the model files are only listed (``files``), not loaded."""
    folder = Path(folder)
    missing = [f for f in (MODEL_FILE, CARD_FILE) if not (folder / f).is_file()]
    if missing:
        raise BundleError(f"{folder}: not a captioner bundle (missing {', '.join(missing)})")
    card = read_json(folder / CARD_FILE, BundleError)
    if not isinstance(card, dict) or "encoder" not in card:
        raise BundleError(f"{folder / CARD_FILE}: the card does not name its encoder")
    vocab = Vocabulary.load(folder / VOCAB_FILE) if (folder / VOCAB_FILE).is_file() else None
    tags = read_json(folder / TAGS_FILE, BundleError) if (folder / TAGS_FILE).is_file() else None
    member_files = sorted((folder / MEMBERS).glob("*.keras"), key=lambda p: (len(p.name), p.name))
    files = [folder / MODEL_FILE, *member_files]
    if not models:
        return Bundle(None, card, vocab, tags, files=files)
    model = _load_model(folder / MODEL_FILE)
    members = [_load_model(path) for path in member_files]
    for part in (model, *members):
        words = getattr(part, "vocab_size", 0)
        if words and (vocab is None or words != len(vocab)):
            raise BundleError(f"{folder}: a model has {words} words, vocab.json {len(vocab or [])}")
    if getattr(model, "num_tags", 0) and (tags is None or model.num_tags != len(tags)):
        raise BundleError(f"{folder}: the model has {model.num_tags} tags, tags.json {len(tags or [])}")
    return Bundle(model, card, vocab, tags, members, files)


def _load_model(path: Path):
    """The model of a bundle, safe mode on; a damaged or foreign file gives one clear line."""
    if not zipfile.is_zipfile(path):
        raise BundleError(f"{path}: damaged or not a Keras model archive (a .keras file is a zip); "
                          "copy the bundle again or retrain it")
    import keras

    # Keras finds a saved class by its registered name: the decoders register on import.
    import captioner.captioning.attention  # noqa: F401
    import captioner.captioning.decoder  # noqa: F401

    try:
        return keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a damaged archive
        reason = " ".join(str(exc).split())[:300]
        raise BundleError(f"{path}: cannot load the model ({reason})") from None
