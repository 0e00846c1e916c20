"""Bundle folders (captioner.captioning.bundle): never lose a user's folder, refuse bad models."""

import json
import zipfile
from pathlib import Path

import keras
import pytest

from captioner.captioning.bundle import Bundle, card_digest, check_target, load_bundle, save_bundle
from captioner.captioning.config import TrainConfig
from captioner.captioning.train import build_decoder
from captioner.data.text import Vocabulary
from captioner.errors import BundleError


@pytest.fixture(scope="module")
def bundle():
    vocab = Vocabulary.build(["a dog runs", "a cat sits"], min_count=1)
    config = TrainConfig(embed_dim=8, units=8, min_count=1)
    return Bundle(build_decoder(vocab, 4, config), {"encoder": "efficientnet_lite0"}, vocab=vocab)


def test_a_folder_the_toolkit_did_not_write_is_never_replaced(tmp_path, bundle):
    documents = tmp_path / "Documents"
    documents.mkdir()
    (documents / "thesis.tex").write_text("years of work")
    with pytest.raises(BundleError, match="not empty and is not a captioner bundle"):
        save_bundle(documents, bundle)
    assert (documents / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Documents"]  # no temp folder left


def test_out_dot_is_refused(tmp_path, bundle, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(BundleError, match="the folder you are working in"):
        save_bundle(Path("."), bundle)
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    (tmp_path / "notes.txt").unlink()  # empty, the working folder still cannot be swapped out
    with pytest.raises(BundleError, match="the folder you are working in"):
        check_target(Path("."))


def test_a_link_to_a_bundle_replaces_the_bundle_and_keeps_the_link(tmp_path, bundle):
    real = save_bundle(tmp_path / "real", bundle)
    (tmp_path / "link").symlink_to(real)
    save_bundle(tmp_path / "link", Bundle(bundle.model, {"encoder": "efficientnet_lite0", "v": 2},
                                          vocab=bundle.vocab))
    assert (tmp_path / "link").is_symlink()
    assert json.loads((real / "card.json").read_text())["v"] == 2


def test_a_place_that_cannot_be_written_is_refused_before_any_work(tmp_path):
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(BundleError, match="cannot write a bundle there"):
        check_target(tmp_path / "a-file" / "bundle")


def test_a_bundle_is_replaced_whole_and_a_failed_save_keeps_the_old_one(tmp_path, bundle, monkeypatch):
    folder = save_bundle(tmp_path / "model", bundle)
    (folder / "checkpoints").mkdir()  # a training run's leftovers are the toolkit's own
    newer = Bundle(bundle.model, {"encoder": "efficientnet_lite0", "version": 2}, vocab=bundle.vocab)
    save_bundle(folder, newer)
    assert json.loads((folder / "card.json").read_text())["version"] == 2
    assert not (folder / "checkpoints").exists()

    def crash(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(type(bundle.model), "save", crash)
    with pytest.raises(OSError):
        save_bundle(folder, Bundle(bundle.model, {"encoder": "efficientnet_lite0", "version": 3},
                                   vocab=bundle.vocab))
    monkeypatch.undo()
    assert json.loads((folder / "card.json").read_text())["version"] == 2
    assert load_bundle(folder).vocab == bundle.vocab
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_damaged_model_file_is_named_as_damaged(tmp_path, bundle):
    folder = save_bundle(tmp_path / "model", bundle)
    (folder / "model.keras").write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(BundleError, match="damaged or not a Keras model archive"):
        load_bundle(folder)


def test_code_in_a_bundle_is_refused(tmp_path, bundle):
    """A Lambda layer (Python code in the archive) never loads: safe mode stays on."""
    folder = save_bundle(tmp_path / "model", bundle)
    inputs = keras.Input((4,))
    evil = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    evil.save(folder / "model.keras")
    with pytest.raises(BundleError, match="cannot load the model"):
        load_bundle(folder)
    with zipfile.ZipFile(folder / "model.keras") as archive:
        assert "Lambda" in archive.read("config.json").decode()


def test_a_card_with_nan_is_written_as_valid_json_with_null(tmp_path, bundle):
    """NaN is not JSON (a self-critical epoch has no dev_loss): the card says null instead."""
    card = {"encoder": "efficientnet_lite0",
            "history": [{"epoch": 1, "loss": 2.5, "dev_loss": float("nan")}],
            "scores": {"worst": float("-inf"), "best": float("inf")}}
    folder = save_bundle(tmp_path / "model", Bundle(bundle.model, card, vocab=bundle.vocab))

    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    written = json.loads((folder / "card.json").read_text(), parse_constant=refuse)
    assert written["history"] == [{"epoch": 1, "loss": 2.5, "dev_loss": None}]
    assert written["scores"] == {"worst": None, "best": None}
    loaded = load_bundle(folder).card
    assert loaded["history"][0]["dev_loss"] is None
    assert card_digest(loaded) == card_digest(card)  # outputs made before the save still resume
