"""Fitting a CaptionDecoder on (feature, caption) pairs: checkpoints, resume, early stopping.

Each epoch ends with a checkpoint (the whole compiled model, optimizer state included, plus
the progress so far in JSON), so an interrupted run continues where it stopped. Early
stopping watches the dev loss or a dev score of greedy captions (BLEU-4 or CIDEr-D) and the
best epoch's weights are the ones kept.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np

from captioner.errors import CaptionerError
from captioner.files import atomic_path, atomic_write_text
from captioner.metrics import evaluate_captions
from captioner.models.decoder import CaptionDecoder
from captioner.search import greedy
from captioner.text import Vocabulary

MONITORS = {"loss": "dev_loss", "bleu4": "BLEU-4", "cider": "CIDEr-D"}


@dataclass
class TrainConfig:
    """Every knob of a training run; saved in the bundle's card."""

    embed_dim: int = 256
    units: int = 512
    num_layers: int = 1
    dropout: float = 0.5
    feature_dropout: float = 0.5
    learning_rate: float = 1e-3
    batch_size: int = 64
    epochs: int = 30
    patience: int = 5
    monitor: str = "cider"
    min_count: int = 3
    max_length: int = 20
    seed: int = 0
    lm_epochs: int = 0  # language-model pre-training epochs on caption text alone


def encode_captions(vocab: Vocabulary, captions: list[str], max_length: int) -> np.ndarray:
    """Token ids with <start>/<end>, cut to max_length words, padded with 0: (N, max_length + 2)."""
    out = np.zeros((len(captions), max_length + 2), dtype="int32")
    for i, caption in enumerate(captions):
        ids = vocab.encode(caption, add_start_end=False)[:max_length]
        out[i, : len(ids) + 2] = [Vocabulary.START_ID, *ids, Vocabulary.END_ID]
    return out


def pairs_dataset(features: np.ndarray, captions: list[list[str]], vocab: Vocabulary,
                  config: TrainConfig, shuffle: bool):
    """A tf.data pipeline of ((feature, input tokens), target tokens), one element per caption."""
    import tensorflow as tf

    image_index = np.array([i for i, caps in enumerate(captions) for _ in caps], dtype="int32")
    tokens = encode_captions(vocab, [c for caps in captions for c in caps], config.max_length)
    feats = tf.constant(np.asarray(features, dtype="float32"))
    ds = tf.data.Dataset.from_tensor_slices((image_index, tokens))
    if shuffle:
        ds = ds.shuffle(len(tokens), seed=config.seed, reshuffle_each_iteration=True)
    ds = ds.batch(config.batch_size).map(
        lambda i, t: ((tf.gather(feats, i), t[:, :-1]), t[:, 1:]), num_parallel_calls=2
    )
    return ds.prefetch(2)


def build_decoder(vocab: Vocabulary, feature_dim: int, config: TrainConfig) -> CaptionDecoder:
    """A compiled decoder for ``config`` (padding ignored by the loss)."""
    decoder = CaptionDecoder(
        len(vocab), feature_dim, embed_dim=config.embed_dim, units=config.units,
        num_layers=config.num_layers, dropout=config.dropout,
        feature_dropout=config.feature_dropout,
    )
    decoder.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate, clipnorm=5.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
    )
    decoder.build_for()
    return decoder


class _EpochEnd(keras.callbacks.Callback):
    """Scores the dev set, keeps the best weights, stops on patience, checkpoints for resume."""

    def __init__(self, trainer: Trainer):
        super().__init__()
        self.trainer = trainer

    def on_epoch_end(self, epoch, logs=None):
        if self.trainer.end_epoch(epoch, logs or {}):
            self.model.stop_training = True


class Trainer:
    """One training run in a folder: ``run()`` starts it or resumes it."""

    def __init__(self, folder: Path, vocab: Vocabulary, config: TrainConfig,
                 train: tuple[np.ndarray, list[list[str]]], dev: tuple[np.ndarray, list[list[str]]],
                 lm_captions: list[str] | None = None, progress: bool = True):
        if config.monitor not in MONITORS:
            raise CaptionerError(f"unknown monitor {config.monitor!r}; choose from {', '.join(MONITORS)}")
        self.folder = Path(folder)
        self.vocab, self.config = vocab, config
        self.train_data, self.dev_data = train, dev
        self.lm_captions = lm_captions or []
        self.verbose = 2 if progress else 0
        self.state_path = self.folder / "progress.json"
        self.last_path = self.folder / "last.keras"
        self.best_path = self.folder / "best.weights.h5"
        self.state = {"epoch": 0, "history": [], "best": None, "best_epoch": None, "wait": 0,
                      "config": asdict(config)}

    def _better(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value < best if self.config.monitor == "loss" else value > best

    def dev_scores(self, decoder: CaptionDecoder) -> dict:
        """Greedy captions of the dev images scored against their references."""
        features, refs = self.dev_data
        caps = greedy(decoder, self.vocab, features, self.config.max_length)
        hyps = {i: c.text for i, c in enumerate(caps)}
        scores = evaluate_captions(hyps, dict(enumerate(refs)))
        scores["distinct"] = len(set(hyps.values()))
        return scores

    def end_epoch(self, epoch: int, logs: dict) -> bool:
        """Record the epoch; returns True when training should stop."""
        decoder = self.decoder
        row = {"epoch": epoch + 1, "loss": float(logs.get("loss", np.nan)),
               "dev_loss": float(logs.get("val_loss", np.nan)), **self.dev_scores(decoder)}
        self.state["history"].append(row)
        value = row[MONITORS[self.config.monitor]]
        if self._better(value, self.state["best"]):
            self.state.update(best=value, best_epoch=epoch + 1, wait=0)
            with atomic_path(self.best_path, suffix=".weights.h5") as tmp:
                decoder.save_weights(tmp)
        else:
            self.state["wait"] += 1
        self.state["epoch"] = epoch + 1
        with atomic_path(self.last_path, suffix=".keras") as tmp:
            decoder.save(tmp)
        atomic_write_text(self.state_path, json.dumps(self.state, indent=1))
        if self.verbose:
            print(f"epoch {epoch + 1}: loss {row['loss']:.3f} dev_loss {row['dev_loss']:.3f} "
                  f"BLEU-4 {row['BLEU-4']:.2f} CIDEr-D {row['CIDEr-D']:.2f} distinct {row['distinct']}")
        return self.state["wait"] >= self.config.patience

    def run(self, resume: bool = False) -> CaptionDecoder:
        """Train (or continue an interrupted run); returns the decoder with the best weights."""
        config = self.config
        features, _ = self.train_data
        self.folder.mkdir(parents=True, exist_ok=True)
        if resume and self.last_path.is_file() and self.state_path.is_file():
            self.state = json.loads(self.state_path.read_text())
            self.decoder = keras.models.load_model(self.last_path)
            if self.verbose:
                print(f"resuming {self.folder} after epoch {self.state['epoch']}")
        else:
            keras.utils.set_random_seed(config.seed)
            self.decoder = build_decoder(self.vocab, features.shape[1], config)
            if config.lm_epochs and self.lm_captions:
                self._pretrain_language_model()
        start = self.state["epoch"]
        done = self.state["wait"] >= config.patience
        if start < config.epochs and not done:
            keras.utils.set_random_seed(config.seed + start)  # a resumed run stays seeded
            self.decoder.fit(
                pairs_dataset(*self.train_data, self.vocab, config, shuffle=True),
                validation_data=pairs_dataset(*self.dev_data, self.vocab, config, shuffle=False),
                epochs=config.epochs, initial_epoch=start, verbose=self.verbose,
                callbacks=[_EpochEnd(self)],
            )
        if self.best_path.is_file():
            self.decoder.load_weights(self.best_path)
        return self.decoder

    def _pretrain_language_model(self) -> None:
        """Next-word prediction on caption text alone: the image feature is all zeros."""
        captions = [[c] for c in self.lm_captions]
        zeros = np.zeros((len(captions), self.train_data[0].shape[1]), dtype="float32")
        if self.verbose:
            print(f"language-model pre-training on {len(captions)} captions")
        self.decoder.fit(pairs_dataset(zeros, captions, self.vocab, self.config, shuffle=True),
                         epochs=self.config.lm_epochs, verbose=self.verbose)
