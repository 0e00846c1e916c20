"""Fitting a CaptionDecoder on (feature, caption) pairs: checkpoints, resume, early stopping.

Each epoch ends with a checkpoint (the whole compiled model, optimizer state included, plus
the progress so far in JSON), so an interrupted run continues where it stopped. Early
stopping watches the dev loss or a dev score of greedy captions (BLEU-4 or CIDEr-D) and the
best epoch's weights are the ones kept. The steps are ``DistributedSteps``: one device, a
machine's devices or several machines run the same loop (``distribute``).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from captioner.captioning.attention import AttentionDecoder
from captioner.captioning.bundle import CHECKPOINTS, check_target, make_card
from captioner.captioning.config import MONITORS, TrainConfig
from captioner.captioning.dataset import load_split, read_records
from captioner.captioning.decoder import CaptionDecoder
from captioner.captioning.distribute import (
    DistributedSteps,
    describe,
    distribute_batches,
    is_chief,
    same_on_every_worker,
)
from captioner.captioning.numpy_step import numpy_decoder
from captioner.captioning.search import greedy
from captioner.data.text import Vocabulary
from captioner.encoders.base import Encoder
from captioner.errors import CaptionerError
from captioner.evaluation.captions import evaluate_captions
from captioner.files import atomic_path, atomic_write_text
from captioner.machine import cores

LANGUAGE_MODEL_WEIGHTS = "language_model.weights.h5"


def encode_captions(vocab: Vocabulary, captions: list[str], max_length: int) -> np.ndarray:
    """Token ids with <start>/<end>, cut to max_length words, padded with 0: (N, max_length + 2)."""
    out = np.zeros((len(captions), max_length + 2), dtype="int32")
    for i, caption in enumerate(captions):
        ids = vocab.encode(caption, add_start_end=False)[:max_length]
        out[i, : len(ids) + 2] = [Vocabulary.START_ID, *ids, Vocabulary.END_ID]
    return out


def pairs_dataset(features: np.ndarray, captions: list[list[str]], vocab: Vocabulary,
                  config: TrainConfig, epochs: range | None = None):
    """A tf.data pipeline of ((feature, input tokens), target tokens) batches, one pair per caption.

    With ``epochs`` (a range of epoch numbers) the pairs come once per epoch, each epoch in an
    order drawn from (seed, epoch) alone: a resumed run sees the same orders in its remaining
    epochs as an uninterrupted one, and one pipeline serves the whole run. Without, one pass
    in file order (validation).
    """
    image_index = np.array([i for i, caps in enumerate(captions) for _ in caps], dtype="int32")
    tokens = encode_captions(vocab, [c for caps in captions for c in caps], config.max_length)
    shape = tuple(features.shape[1:])

    def rows(index):
        # Read only this batch's rows: ``features`` may be a float16 memory map on disk.
        return np.asarray(features[np.asarray(index)], dtype="float32")

    def batch(pairs):
        feats = tf.numpy_function(rows, [tf.gather(image_index, pairs)], tf.float32, stateful=False)
        feats.set_shape((None, *shape))
        tok = tf.gather(tokens, pairs)
        return (feats, tok[:, :-1]), tok[:, 1:]

    if epochs is None:
        orders = np.arange(len(tokens), dtype="int32")[None]
    else:
        orders = np.stack([np.random.default_rng([config.seed, e]).permutation(len(tokens))
                           for e in epochs]).astype("int32")
    ds = tf.data.Dataset.from_tensor_slices(orders).flat_map(
        lambda order: tf.data.Dataset.from_tensor_slices(order).batch(config.batch_size))
    return ds.map(batch, num_parallel_calls=cores()).prefetch(2)


def build_decoder(vocab: Vocabulary, feature_shape: int | tuple, config: TrainConfig):
    """A compiled decoder of ``config.decoder``'s type (padding ignored by the loss).

    ``feature_shape`` is one image's features: (D,) pooled, or (R, D) for attention.
    """
    shape = (feature_shape,) if isinstance(feature_shape, int) else tuple(feature_shape)
    if config.decoder == "attention":
        if len(shape) != 2:
            raise CaptionerError(f"the attention decoder needs spatial maps (regions, channels), got {shape}")
        decoder = AttentionDecoder(
            len(vocab), shape[1], regions=shape[0], embed_dim=config.embed_dim, units=config.units,
            attention_dim=config.attention_dim, dropout=config.dropout,
            feature_dropout=config.feature_dropout, attention_penalty=config.attention_penalty)
    else:
        decoder = CaptionDecoder(
            len(vocab), shape[-1], embed_dim=config.embed_dim, units=config.units,
            num_layers=config.num_layers, dropout=config.dropout,
            feature_dropout=config.feature_dropout,
        )
    decoder.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate, clipnorm=5.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
    )
    decoder.build_for()
    return decoder


def _seed_epoch(model: keras.Model, seed: int, epoch: int) -> None:
    """Make this epoch's random numbers (dropout masks) a function of (seed, epoch) alone."""
    # Not keras.utils.set_random_seed: resetting TensorFlow's global seed drops its compiled
    # functions, and the next epoch would pay the whole graph compilation again.
    generators = [value for layer in model._flatten_layers(include_self=True)
                  for value in vars(layer).values() if isinstance(value, keras.random.SeedGenerator)]
    for i, generator in enumerate(generators):
        # The state is [stream, calls so far]: one stream per layer, counted from this epoch.
        state = np.asarray([seed * 1009 + i + 1, epoch << 24], dtype=generator.state.dtype)
        generator.state.assign(state)


def _rate(optimizer: keras.optimizers.Optimizer) -> float:
    """The optimizer's learning rate (its variable may be mirrored, which float() refuses)."""
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


class Trainer:
    """One training run in a folder: ``run()`` starts it or resumes it.

    ``strategy`` (a tf.distribute strategy; default: one device) spreads each global batch of
    ``config.batch_size`` pairs over its replicas; the weights come out as one device's would.
    """

    def __init__(self, folder: Path, vocab: Vocabulary, config: TrainConfig,
                 train: tuple[np.ndarray, list[list[str]]], dev: tuple[np.ndarray, list[list[str]]],
                 lm_captions: list[str] | None = None, progress: bool = True,
                 strategy: tf.distribute.Strategy | None = None, language_model: Path | None = None):
        self.folder = Path(folder)
        self.vocab, self.config = vocab, config
        self.strategy = strategy or tf.distribute.get_strategy()
        self._steps: DistributedSteps | None = None
        self.train_data, self.dev_data = train, dev
        self.lm_captions = lm_captions or []
        self.verbose = 2 if progress else 0
        self.state_path = self.folder / "progress.json"
        self.last_path = self.folder / "last.keras"
        self.best_path = self.folder / "best.weights.h5"
        # The decoder as language-model pre-training left it: the output rows of words that only
        # the text holds are taken from it after paired training (captioning.text_words).
        self.language_model_path = Path(language_model or self.folder / LANGUAGE_MODEL_WEIGHTS)
        self.vocab_path = self.folder / "vocab.json"
        self.state = {"epoch": 0, "history": [], "best": None, "best_epoch": None, "wait": 0,
                      "config": asdict(config)}

    def seconds(self) -> float:
        """Wall time of the epochs run so far (language-model pre-training in the first)."""
        return round(sum(row.get("seconds", 0.0) for row in self.state["history"]), 1)

    def _better(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value < best if self.config.monitor == "loss" else value > best

    def dev_scores(self, decoder: CaptionDecoder) -> dict:
        """Greedy captions of the dev images scored against their references."""
        features, refs = self.dev_data
        caps = greedy(numpy_decoder(decoder), self.vocab, features, self.config.max_length)
        hyps = {i: c.text for i, c in enumerate(caps)}
        scores = evaluate_captions(hyps, dict(enumerate(refs)))
        scores["distinct"] = len(set(hyps.values()))
        return scores

    def end_epoch(self, epoch: int, logs: dict) -> bool:
        """Record the epoch; returns True when training should stop."""
        decoder = self.decoder
        row = {"epoch": epoch + 1, "loss": float(logs.get("loss", np.nan)),
               "dev_loss": float(logs.get("val_loss", np.nan)), **self.dev_scores(decoder),
               **{k: float(v) for k, v in logs.items() if k not in ("loss", "val_loss")}}
        now = time.monotonic()  # wall time of the epoch, its dev scoring included
        row["seconds"], self._clock = round(now - self._clock, 1), now
        row["learning_rate"] = _rate(decoder.optimizer)  # the rate this epoch ran at
        self.state["history"].append(row)
        value = row[MONITORS[self.config.monitor]]
        if self._better(value, self.state["best"]):
            self.state.update(best=value, best_epoch=epoch + 1, wait=0)
            with atomic_path(self.best_path, suffix=".weights.h5") as tmp:
                decoder.save_weights(tmp)
        else:
            self.state["wait"] += 1
            self._decay_learning_rate()
        self.state["epoch"] = epoch + 1
        with atomic_path(self.last_path, suffix=".keras") as tmp:
            decoder.save(tmp)
        atomic_write_text(self.state_path, json.dumps(self.state, indent=1))
        if self.verbose:
            print(f"epoch {epoch + 1}: loss {row['loss']:.3f} dev_loss {row['dev_loss']:.3f} "
                  f"BLEU-4 {row['BLEU-4']:.2f} CIDEr-D {row['CIDEr-D']:.2f} distinct {row['distinct']}")
        return self.state["wait"] >= self.config.patience

    def _decay_learning_rate(self) -> None:
        """After an epoch that is not the best, a smaller step (``lr_decay``; 1 keeps it). The
        rate lives in the optimizer, so the checkpoint carries it to a resumed run."""
        if self.config.lr_decay < 1.0:
            optimizer = self.decoder.optimizer
            optimizer.learning_rate = _rate(optimizer) * self.config.lr_decay

    def run(self, resume: bool = False) -> CaptionDecoder:
        """Train (or continue an interrupted run); returns the decoder with the best weights.

        Each epoch's order and dropout masks depend on (seed, epoch) alone and the checkpoint
        holds the optimizer state, so a run interrupted and resumed gives the same weights as
        one left alone.
        """
        config = self.config
        self._clock = time.monotonic()
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.state_path.is_file() and not resume:
            raise CaptionerError(f"{self.folder}: holds an interrupted training run; add --resume to "
                                 "continue it, or --overwrite to start again")
        # Under the strategy's scope the model's and the optimizer's variables live on every replica.
        with self.strategy.scope():
            if resume and self.last_path.is_file() and self.state_path.is_file():
                self.state = json.loads(self.state_path.read_text())
                self._check_same_run()
                self.decoder = keras.models.load_model(self.last_path)
                if self.verbose:
                    print(f"resuming {self.folder} after epoch {self.state['epoch']}")
            else:
                keras.utils.set_random_seed(config.seed)
                self.vocab.save(self.vocab_path)
                self.decoder = self.start_model()
            start = self.state["epoch"]
            if not same_on_every_worker(self.strategy, start):
                raise CaptionerError(f"{self.folder}: the workers would start from different "
                                     "epochs; each must read the chief's checkpoints, so put "
                                     "--out on storage that every machine shares")
            if start < config.epochs and self.state["wait"] < config.patience:
                self.fit(start)
            if self.best_path.is_file():
                self.decoder.load_weights(self.best_path)
        return self.decoder

    def steps(self) -> DistributedSteps:
        """The training and evaluation steps of the current decoder (traced once per decoder)."""
        if self._steps is None or self._steps.model is not self.decoder:
            self._steps = DistributedSteps(self.decoder, self.strategy)
        return self._steps

    def _batches(self, data: tuple, epochs: range | None = None):
        """``data``'s pairs as distributed batches, and the number of batches in one pass."""
        features, captions = data
        pairs = sum(len(caps) for caps in captions)
        batches = distribute_batches(
            self.strategy, lambda: pairs_dataset(features, captions, self.vocab, self.config, epochs))
        return batches, -(-pairs // self.config.batch_size)

    def start_model(self):
        """A new compiled decoder (pre-trained on caption text when asked)."""
        self.decoder = build_decoder(self.vocab, self.train_data[0].shape[1:], self.config)
        if self.config.lm_epochs and self.lm_captions:
            self._pretrain_language_model()
            with atomic_path(self.language_model_path, suffix=".weights.h5") as tmp:
                self.decoder.save_weights(tmp)
        return self.decoder

    def fit(self, start: int) -> None:
        """Epochs ``start`` .. ``config.epochs`` of word-by-word cross-entropy."""
        config, steps = self.config, self.steps()
        train, per_epoch = self._batches(self.train_data, range(start, config.epochs))
        dev, dev_steps = self._batches(self.dev_data)
        if self.verbose and self.strategy.num_replicas_in_sync > 1:
            spread = describe(self.strategy)
            print(f"{spread['name']} training: {spread['replicas']} replicas on {spread['workers']} "
                  f"worker(s), {config.batch_size} pairs per step in all")
        batches = iter(train)  # one pipeline for every remaining epoch
        for epoch in range(start, config.epochs):
            _seed_epoch(self.decoder, config.seed, epoch)
            logs = {"loss": steps.train(batches, per_epoch), "val_loss": steps.evaluate(dev, dev_steps)}
            if self.end_epoch(epoch, logs):
                break

    def _check_same_run(self) -> None:
        """Refuse to resume a checkpoint made with other settings or another vocabulary."""
        saved = self.state.get("config", {})
        # More epochs is how a finished run is extended; every other knob must match.
        now = {k: v for k, v in asdict(self.config).items() if k != "epochs"}
        changed = [f"{k} {saved.get(k)!r} -> {v!r}" for k, v in now.items() if saved.get(k) != v]
        if changed:
            raise CaptionerError(f"{self.folder}: the checkpoint was made with other settings "
                                 f"({'; '.join(changed)}); resume with the same flags, or use "
                                 "--overwrite to start again")
        if not self.vocab_path.is_file() or Vocabulary.load(self.vocab_path) != self.vocab:
            raise CaptionerError(f"{self.folder}: the checkpoint was made with another vocabulary "
                                 "(other training captions?); use --overwrite to start again")
        self.state["config"] = asdict(self.config)

    def _pretrain_language_model(self) -> None:
        """Next-word prediction on caption text alone: every caption of one all-zero "image"."""
        zeros = np.zeros((1, *self.train_data[0].shape[1:]), dtype="float32")
        if self.verbose:
            print(f"language-model pre-training on {len(self.lm_captions)} captions")
        steps = self.steps()
        text, per_epoch = self._batches((zeros, [self.lm_captions]), range(self.config.lm_epochs))
        batches = iter(text)
        for epoch in range(self.config.lm_epochs):
            loss = steps.train(batches, per_epoch)
            if self.verbose:
                print(f"language-model epoch {epoch + 1}: loss {loss:.3f}")


def train_captioner(data: Path, images: Path, out: Path, encoder: Encoder, config: TrainConfig,
                    resume: bool = False, overwrite: bool = False,
                    lm_data: Path | list[Path] | None = None,
                    command: str | None = None, progress: bool = True,
                    strategy: tf.distribute.Strategy | None = None, language_model: Path | None = None):
    """Train on the train split (plus unsplit images), stop on the dev-select half; returns the
    decoder, its vocabulary, the card so far and the two encoded dev halves (select, report).
    Checkpoints live in ``out``; under ``strategy`` (default: one device) only its chief shows
    progress."""
    strategy = strategy or tf.distribute.get_strategy()
    progress = progress and is_chief(strategy)
    check_target(out)  # before any work: never train towards a folder that cannot be written
    kind = AttentionDecoder.feature_kind if config.decoder == "attention" else "pooled"
    records, (train, select, report), problems = load_splits(data, images, encoder, kind, progress)
    lm_files = [lm_data] if isinstance(lm_data, (str, Path)) else list(lm_data or [])
    lm_records = [r for path in lm_files for r in _lm_records(path, records)]
    lm_captions = [r.caption for r in lm_records]
    vocab = training_vocabulary(train, lm_records, config.min_count)
    folder = Path(out) / CHECKPOINTS
    if overwrite:
        shutil.rmtree(folder, ignore_errors=True)
    trainer = Trainer(folder, vocab, config, (train.features, train.captions),
                      (select.features, select.captions), lm_captions=lm_captions, progress=progress,
                      strategy=strategy, language_model=language_model)
    decoder = trainer.run(resume=resume)
    data_card = {"captions": str(data), "images": str(images), "train_images": len(train.names),
                 "dev_select_images": len(select.names), "dev_report_images": len(report.names),
                 "lm_data": [str(p) for p in lm_files], "lm_captions": len(lm_captions),
                 "vocabulary": {"words": len(vocab), "min_count": config.min_count,
                                "text_only": len(text_only_words(vocab, train.captions))}}
    card = make_card(encoder, config, command, data_card, problems,
                     best_epoch=trainer.state["best_epoch"], history=trainer.state["history"],
                     training_seconds=trainer.seconds(), strategy=describe(strategy))
    return decoder, vocab, card, select, report


def load_splits(data: Path, images: Path, encoder: Encoder, kind: str, progress: bool = True):
    """The records of a caption file and its train (plus unsplit), dev-select and dev-report
    splits as features of ``kind``; also the problems met. Refuses a set without train or dev."""
    records = read_records(Path(data))
    splits, problems = [], []
    for names in (("train", None), ("dev-select",), ("dev-report",)):
        split, met = load_split(records, Path(images), encoder, names, progress, kind)
        splits.append(split)
        problems += met
    train, select, report = splits
    if not train.names or not select.names:
        raise CaptionerError(f"{data}: need images in both the train and dev splits under {images} "
                             f"(found {len(train.names)} and {len(select.names) + len(report.names)})")
    return records, splits, problems


def training_vocabulary(train, lm_records: list, min_count: int) -> Vocabulary:
    """Words of the training captions and of the language-model text: a word the photos never
    show can still be asked for (guided captions) when the text knows it. A training photo's
    captions count once, however many of the files hold them."""
    seen = set(train.names)
    text = [c for caps in train.captions for c in caps]
    text += [r.caption for r in lm_records if r.image not in seen]
    return Vocabulary.build(text, min_count=min_count)


def text_only_words(vocab: Vocabulary, paired: list[list[str]]) -> list[int]:
    """Ids of the vocabulary's words that no paired training caption holds (text-only words)."""
    seen = {i for caps in paired for c in caps for i in vocab.encode(c, add_start_end=False)}
    return [i for i in range(Vocabulary.UNK_ID + 1, len(vocab)) if i not in seen]


def _lm_records(path: Path, records: list) -> list:
    """Caption text for language-model pre-training: never of a dev or test image, whether the
    text's own file or the training data set says it is one."""
    held_out = {r.image for r in records if r.split in ("dev", "test")}
    return [r for r in read_records(Path(path))
            if r.split not in ("dev", "test") and r.image not in held_out]
