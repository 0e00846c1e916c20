"""The public Python API: what the CLI and the notebooks call."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from captioner.bundle import Bundle, load_bundle, save_bundle
from captioner.corpus import Split, load_split, read_records
from captioner.encoders import DEFAULT_ENCODER, get_encoder
from captioner.encoders.imagenet import top_k
from captioner.errors import BundleError, EncoderError
from captioner.features import extract_features
from captioner.images import expand_paths
from captioner.metrics import evaluate_captions
from captioner.models.decoder import CaptionDecoder
from captioner.outputs import result_writer
from captioner.search import Caption, beam_search, greedy, next_words
from captioner.text import Vocabulary
from captioner.train import TrainConfig, Trainer

PRETRAINED = Path(__file__).parent / "pretrained" / "flickr8k_lite0"


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
        raise EncoderError(f"encoder {encoder} has no ImageNet classifier; use {DEFAULT_ENCODER}")
    files = expand_paths(paths, recursive=recursive)
    result = extract_features(files, enc, kinds=("probabilities",), progress=progress)
    labels = dict(zip(result.paths, top_k(result.features["probabilities"], k)))
    errors = dict(result.errors)
    return [
        {"image": str(p), "labels": [{"label": n, "score": s} for n, s in labels[p]]}
        if p in labels else {"image": str(p), "error": errors[p]}
        for p in files
    ]


class Captioner:
    """A trained caption decoder, its vocabulary, its card, and the encoder it was trained on."""

    def __init__(self, decoder: CaptionDecoder, vocab: Vocabulary, card: dict):
        self.decoder, self.vocab, self.card = decoder, vocab, card
        self._encoder = None

    # --- loading and saving -----------------------------------------------------------
    @classmethod
    def load(cls, folder: Path) -> Captioner:
        """Load a bundle folder written by :meth:`save` or ``captioner train``."""
        bundle = load_bundle(folder)
        if not isinstance(bundle.model, CaptionDecoder):
            raise BundleError(f"{folder}: holds a {type(bundle.model).__name__}, not an image captioner")
        return cls(bundle.model, bundle.vocab, bundle.card)

    @classmethod
    def from_pretrained(cls) -> Captioner:
        """The captioner that ships with the package (Flickr8k photos, Lite0 features)."""
        if not PRETRAINED.is_dir():
            raise BundleError(f"the bundled captioner is missing from {PRETRAINED}; reinstall captioner")
        return cls.load(PRETRAINED)

    def save(self, folder: Path) -> Path:
        """Write this captioner as a bundle folder."""
        return save_bundle(folder, Bundle(self.decoder, self.card, vocab=self.vocab))

    @property
    def encoder(self):
        """The encoder named in the card, loaded on first use."""
        if self._encoder is None:
            self._encoder = get_encoder(self.card["encoder"])
            if self._encoder.feature_dim != self.decoder.feature_dim:
                raise BundleError(f"encoder {self.card['encoder']} gives {self._encoder.feature_dim} "
                                  f"features; the decoder expects {self.decoder.feature_dim}")
        return self._encoder

    # --- captioning ------------------------------------------------------------------
    def caption_features(self, features: np.ndarray, beam: int = 1, max_length: int = 20,
                         length_penalty: float | None = None) -> list[Caption]:
        """Captions for a batch of pooled features; ``beam`` 1 is greedy search.

        ``length_penalty`` defaults to the one the bundle's card chose on its dev split.
        """
        if beam <= 1:
            return greedy(self.decoder, self.vocab, features, max_length)
        if length_penalty is None:
            length_penalty = self.card.get("decoding", {}).get("length_penalty", 1.0)
        return beam_search(self.decoder, self.vocab, features, beam, max_length, length_penalty)

    def caption(self, paths: list[Path], beam: int = 1, recursive: bool = False,
                output: Path | None = None, chunk: int = 256, progress: bool = True) -> list[dict]:
        """A caption for every image found: ``{"image", "caption", "score"}`` or ``{"image", "error"}``.

        With ``output`` (.jsonl, .csv or .json) the rows are also written there, atomically;
        a re-run with the same output skips the images it already holds, and an interrupted
        run resumes from its journal.
        """
        files = expand_paths(paths, recursive=recursive)
        with result_writer(output, key="image", kind="images") as writer:
            todo = [f for f in files if not writer.done(str(f))]
            for start in range(0, len(todo), chunk):
                writer.add(self.caption_files(todo[start : start + chunk], beam=beam, progress=progress))
            return writer.rows

    def caption_files(self, files: list[Path], beam: int = 1, progress: bool = True) -> list[dict]:
        """Caption exactly these files, in order (the batch step of ``caption``)."""
        result = extract_features(files, self.encoder, progress=progress)
        caps = dict(zip(result.paths, self.caption_features(result.features["pooled"], beam)))
        errors = dict(result.errors)
        return [
            {"image": str(p), "caption": caps[p].text, "score": round(caps[p].score, 4)}
            if p in caps else {"image": str(p), "error": errors[p]}
            for p in files
        ]

    def next_words(self, image: Path | np.ndarray, prefix: str = "", k: int = 10) -> list[tuple[str, float]]:
        """The k most likely next words after ``prefix`` for one image (a path or its feature)."""
        if not isinstance(image, np.ndarray):
            result = extract_features([Path(image)], self.encoder, progress=False)
            if result.errors:
                raise result_error(result.errors[0])
            image = result.features["pooled"][0]
        return next_words(self.decoder, self.vocab, image, prefix, k)

    # --- evaluation and training -----------------------------------------------------------
    def evaluate(self, data: Path, images: Path, split: str | None = "test", beam: int = 1,
                 per_image: bool = False, progress: bool = True) -> dict:
        """BLEU-1..4 and CIDEr-D (0-100) of this captioner on one split of a data set."""
        records = read_records(Path(data))
        subset, problems = load_split(records, Path(images), self.encoder, (split,), progress)
        return evaluate_split(self, subset, beam, per_image) | {"problems": problems}

    @classmethod
    def train(cls, data: Path, images: Path, out: Path, encoder: str = DEFAULT_ENCODER,
              config: TrainConfig | None = None, resume: bool = False,
              lm_data: Path | None = None, command: str | None = None,
              progress: bool = True) -> Captioner:
        """Train on the train split (plus unsplit images), stop on dev, save a bundle at ``out``."""
        config = config or TrainConfig()
        enc = get_encoder(encoder)
        records = read_records(Path(data))
        train, problems = load_split(records, Path(images), enc, ("train", None), progress)
        dev, more = load_split(records, Path(images), enc, ("dev",), progress)
        problems += more
        if not train.names or not dev.names:
            raise BundleError(f"{data}: need images in both the train and dev splits under {images} "
                              f"(found {len(train.names)} and {len(dev.names)})")
        vocab = Vocabulary.build([c for caps in train.captions for c in caps], min_count=config.min_count)
        lm_captions = _lm_captions(lm_data, exclude=set(dev.names)) if lm_data else None
        trainer = Trainer(Path(out) / "checkpoints", vocab, config, (train.features, train.captions),
                          (dev.features, dev.captions), lm_captions=lm_captions, progress=progress)
        decoder = trainer.run(resume=resume)
        captioner = cls(decoder, vocab, {})
        card = {
            "encoder": enc.name,
            "encoder_weights": enc.weights_id,
            "data": {"captions": str(data), "images": str(images), "train_images": len(train.names),
                     "dev_images": len(dev.names), "lm_captions": len(lm_captions or [])},
            "command": command,
            "config": asdict(config),
            "best_epoch": trainer.state["best_epoch"],
            "history": trainer.state["history"],
            "problems": problems[:50],
        }
        captioner.card = card
        card["dev_scores"] = {
            "greedy": _round(evaluate_split(captioner, dev, beam=1)),
            "beam3": _round(evaluate_split(captioner, dev, beam=3)),
        }
        captioner.save(out)
        return captioner


def evaluate_split(captioner: Captioner, split: Split, beam: int = 1, per_image: bool = False) -> dict:
    """Scores of a captioner on an already-encoded split."""
    caps = captioner.caption_features(split.features, beam=beam)
    hyps = {n: c.text for n, c in zip(split.names, caps)}
    scores = evaluate_captions(hyps, dict(zip(split.names, split.captions)), per_image=per_image)
    scores["images"] = len(split.names)
    if per_image:
        for name in split.names:
            scores["per_image"][name]["caption"] = hyps[name]
    return scores


def _lm_captions(path: Path, exclude: set[str]) -> list[str]:
    return [r.caption for r in read_records(path) if r.image not in exclude]


def _round(scores: dict) -> dict:
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in scores.items()}


def result_error(error: tuple[Path, str]):
    from captioner.errors import ImageError

    return ImageError(f"{error[0]}: {error[1]}")


# Video tagging is part of the same public face; its code lives in its own module.
from captioner.video_tagger import TagOptions, VideoTagger

__all__ = ["Captioner", "TagOptions", "VideoTagger", "classify", "evaluate_split"]
