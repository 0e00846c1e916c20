"""The Captioner: a trained decoder, its vocabulary, its card and its encoder, as one object."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from captioner.captioning.bundle import Bundle, card_digest, check_target, load_bundle, save_bundle
from captioner.captioning.config import TrainConfig
from captioner.captioning.dataset import Split, load_split, read_records
from captioner.captioning.ensemble import Ensemble
from captioner.captioning.guided import (
    DEFAULT_THRESHOLD,
    GUIDED_BY_DEFAULT,
    HOLD_PENALTY,
    constraints_for,
    held_back,
    penalty_rows,
)
from captioner.captioning.numpy_step import numpy_decoder
from captioner.captioning.plain_weights import read_step
from captioner.captioning.search import Caption, beam_search, greedy, next_words, shortlist
from captioner.checks import MAX_BEAM, number_in
from captioner.data.caption_sets import DEV_PARTS, dev_when_unsplit
from captioner.data.images import InMemoryImage, gather_images, load_image
from captioner.data.paths import display_path
from captioner.data.text import Vocabulary
from captioner.encoders import DEFAULT_ENCODER
from captioner.encoders.features import as_regions, extract_features, item_name, iter_features
from captioner.encoders.registry import get_encoder
from captioner.errors import BundleError, CaptionerError, ImageError
from captioner.evaluation.captions import evaluate_captions
from captioner.evaluation.hallucination import hallucination
from captioner.files import atomic_path
from captioner.machine import on_every_core
from captioner.results.figures import PANEL, attention_figure
from captioner.results.journal import ResultWriter, result_writer
from captioner.results.writers import check_per_image
from captioner.tagging.tagger import PhotoTagger, photo_tagger

PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained" / "flickr8k_lite0"
CAPTION_BATCH = 256  # images decoded at once: memory-mapped maps are read a batch at a time
# Images per captioning job of a run, each captioned while the encoder goes on with the next:
# the last job has nothing to overlap, so it is kept short (on 400 photos, 29 a second where
# jobs of 256 gave 25; 64 did as well guided, worse greedy).
STREAM_CHUNK = 128
ENCODE_BATCH = 32  # images per encoder call: the fastest of 8, 16, 32 and 64 here
GUIDE_KEYS = ("guided", "guide_threshold", "hold_threshold")
TAG_COUNT = 5  # tags per image row (the guidance reads them all)


class Captioner:
    """A trained caption decoder, its vocabulary, its card, and the encoder it was trained on.

    Loaded from a bundle, it captions with the numpy step read from the bundle's plain weights
    (``step``), and loads the Keras decoder (``decoder``, the training truth) only when asked
    for: to train, fine-tune, save or export. Built from a Keras decoder, it steps a numpy
    snapshot of that decoder's weights at every call.
    """

    def __init__(self, decoder, vocab: Vocabulary, card: dict, *, step=None, folder: Path | None = None):
        self._decoder, self.vocab, self.card = decoder, vocab, card
        self._step, self._folder = step, folder
        self._encoder = None

    # --- loading and saving -----------------------------------------------------------
    @classmethod
    def load(cls, folder: Path) -> Captioner:
        """Load a bundle folder written by :meth:`save` or ``captioner train``."""
        bundle = load_bundle(folder, models=False)
        steps = [read_step(path) for path in bundle.files]
        if any(step is None for step in steps):  # a bundle without plain weights: Keras reads it
            return cls(_keras_decoder(folder), bundle.vocab, bundle.card)
        for path, step in zip(bundle.files, steps):
            if bundle.vocab is None or step.vocab_size != len(bundle.vocab):
                raise BundleError(f"{path}: a model of {step.vocab_size} words, vocab.json "
                                  f"{len(bundle.vocab or [])}")
        step = Ensemble(steps) if len(steps) > 1 else steps[0]
        return cls(None, bundle.vocab, bundle.card, step=step, folder=Path(folder))

    @property
    def decoder(self):
        """The Keras decoder (an ``Ensemble`` of them for an ensemble), loaded on first use."""
        if self._decoder is None:
            self._decoder = _keras_decoder(self._folder)
        return self._decoder

    def step(self):
        """The decoder the searches run: the numpy step (an ``Ensemble`` of them)."""
        return self._step if self._step is not None else numpy_decoder(self.decoder)

    @property
    def _known(self):
        """What answers questions about the decoder (its kind, size) without loading Keras."""
        return self._step if self._step is not None else self.decoder

    @classmethod
    def ensemble(cls, captioners: list[Captioner]) -> Captioner:
        """One captioner from several trained on the same vocabulary and encoder (e.g. other
        seeds): beam search runs over their averaged log-probabilities. Its decoding is the
        first one's until chosen on dev (``captioner ensemble --data``)."""
        first = captioners[0]
        for other in captioners[1:]:
            if other.vocab != first.vocab:
                raise CaptionerError("ensemble members must share one vocabulary (train them on "
                                     "the same captions with the same --min-count and --lm-data)")
            if other.card["encoder"] != first.card["encoder"]:
                raise CaptionerError(f"ensemble members must share one encoder: "
                                     f"{first.card['encoder']} and {other.card['encoder']}")
        decoders = [d for c in captioners
                    for d in (c.decoder.members if isinstance(c.decoder, Ensemble) else [c.decoder])]
        card = {"encoder": first.card["encoder"], "encoder_weights": first.card.get("encoder_weights"),
                "config": first.card.get("config", {}), "decoding": first.card.get("decoding", {}),
                "members": [{k: c.card.get(k) for k in ("command", "config", "data", "scores", "finetune")
                             if k in c.card} for c in captioners]}
        return cls(Ensemble(decoders), first.vocab, card)

    @classmethod
    def from_pretrained(cls) -> Captioner:
        """The captioner that ships with the package (Flickr8k photos, Lite0 features)."""
        if not PRETRAINED.is_dir():
            raise BundleError(f"the bundled captioner is missing from {PRETRAINED}; reinstall captioner")
        return cls.load(PRETRAINED)

    def save(self, folder: Path) -> Path:
        """Write this captioner as a bundle folder."""
        decoders = self.decoder.members if isinstance(self.decoder, Ensemble) else [self.decoder]
        return save_bundle(folder, Bundle(decoders[0], self.card, vocab=self.vocab, members=decoders[1:]))

    @property
    def encoder(self):
        """The encoder named in the card, loaded on first use."""
        if self._encoder is None:
            self._encoder = get_encoder(self.card["encoder"])
            if self._encoder.feature_dim != self._known.feature_dim:
                raise BundleError(f"encoder {self.card['encoder']} gives {self._encoder.feature_dim} "
                                  f"features; the decoder expects {self._known.feature_dim}")
        return self._encoder

    @property
    def tagger(self) -> PhotoTagger | None:
        """The merged photo tags of this captioner's encoder; None without an ImageNet head."""
        return photo_tagger(self.card["encoder"]) if self.encoder.has_classifier else None

    def tag_kinds(self) -> tuple[str, ...]:
        """The feature kinds the tags read besides the decoder's own."""
        tagger = self.tagger
        if tagger is None:
            return ()
        return ("probabilities",) + (("spatial",) if tagger.concepts and self.feature_kind != "spatial" else ())

    def tags_of(self, features: dict[str, np.ndarray],
                objects: list[list[dict]] | None = None) -> list[list[dict]] | None:
        """Every merged tag of a batch, from its features by kind (probabilities, maps) and,
        when given, its detections."""
        tagger = self.tagger
        if tagger is None:
            return None
        maps = features.get("spatial")
        return tagger.tags(features["probabilities"], None if maps is None else as_regions(maps), objects)

    @property
    def feature_kind(self) -> str:
        """What the decoder reads: ``pooled`` vectors or ``spatial`` maps."""
        return self._known.feature_kind

    def _features(self, result) -> np.ndarray:
        """The decoder's input from extracted features: spatial maps as (N, regions, channels)."""
        return as_regions(result.features[self.feature_kind])

    # --- decoding settings -------------------------------------------------------------
    def decoding(self, beam: int | None = None, length_penalty: float | None = None) -> dict:
        """Beam width and length penalty for a run: the arguments, else the card's choice."""
        chosen = self.card.get("decoding", {})
        beam = number_in("beam", chosen.get("beam", 1) if beam is None else beam, 1, MAX_BEAM,
                         integer=True)
        if length_penalty is None:
            length_penalty = chosen.get("length_penalty", 1.0)
        return {"beam": beam, "length_penalty": float(length_penalty)}

    def guidance(self, guided: bool | None = None, threshold: float | None = None,
                 hold_threshold: float | None = None) -> dict:
        """Whether confident tags constrain the captions, how confident, and below which
        evidence object words are held back (None: none are): the arguments, else the card's
        choice, else the measured default (see the README)."""
        chosen = self.card.get("decoding", {})
        guided = chosen.get("guided", GUIDED_BY_DEFAULT) if guided is None else bool(guided)
        if threshold is None:
            threshold = chosen.get("guide_threshold")
        if hold_threshold is None:
            hold_threshold = chosen.get("hold_threshold")
        return {"guided": guided,
                "guide_threshold": number_in("guide threshold",
                                             DEFAULT_THRESHOLD if threshold is None else threshold, 0.0, 1.0),
                "hold_threshold": None if hold_threshold is None
                else number_in("hold threshold", hold_threshold, 0.0, 1.0)}

    def run_settings(self, beam: int | None = None, guided: bool | None = None,
                     threshold: float | None = None, hold_threshold: float | None = None) -> dict:
        """What makes this captioner's rows: the model (by its card) and the decoding."""
        return {"model": card_digest(self.card), **self.decoding(beam),
                **self.guidance(guided, threshold, hold_threshold)}

    # --- captioning ------------------------------------------------------------------
    def caption_features(self, features: np.ndarray, beam: int | None = None, max_length: int = 20,
                         length_penalty: float | None = None,
                         constraints: list[tuple] | None = None,
                         held: list[np.ndarray] | None = None) -> list[Caption]:
        """Captions for a batch of features; ``beam`` 1 is greedy search.

        ``beam`` and ``length_penalty`` default to the ones the bundle's card chose on dev.
        ``constraints``: per image, the sets of word ids its caption must hold one word of
        (guided captions, see captioner.captioning.guided); each image meets its own in one batch.
        ``held``: per image, the word ids held back (their log-probabilities lowered).
        """
        grouped = isinstance(self._known, Ensemble)  # one view per image
        decoder = self.step()
        hold_penalty = self.card.get("decoding", {}).get("hold_penalty", HOLD_PENALTY)
        captions: list[Caption] = []
        for start in range(0, len(features), CAPTION_BATCH):  # bounded memory for big splits
            part = slice(start, start + CAPTION_BATCH)  # in order: a memory-mapped split reads rows
            batch = np.asarray(features[part], dtype="float32")
            penalties = None if held is None else penalty_rows(held[part], len(self.vocab), hold_penalty)
            captions += self._search(decoder, batch[:, None] if grouped else batch, beam, max_length,
                                     length_penalty, None if constraints is None else constraints[part],
                                     penalties)
        return captions

    def caption_tagged(self, features: np.ndarray, tags: list[list[dict]] | None,
                       beam: int | None = None, guided: bool | None = None,
                       guide_threshold: float | None = None,
                       hold_threshold: float | None = None) -> list[Caption]:
        """Captions for features whose tags are known: guided by the confident ones (and with
        unsupported objects held back) when the guidance (arguments, else the card) says so,
        else free."""
        wanted, held = self._guides(tags, guided, guide_threshold, hold_threshold)
        return self.caption_features(features, beam, constraints=wanted, held=held)

    def caption_views(self, views: np.ndarray, beam: int | None = None, max_length: int = 20,
                      length_penalty: float | None = None, tags: list[dict] | None = None,
                      guided: bool | None = None) -> Caption:
        """One caption for several views of one scene (a video clip's frames: (F, ...)
        features), from the word distributions averaged over the views at every step; guided
        by the scene's ``tags`` as caption_tagged guides a photo's."""
        decoder = self.step()
        decoder = decoder if isinstance(decoder, Ensemble) else Ensemble([decoder])
        wanted, held = self._guides(None if tags is None else [tags], guided)
        penalties = None if held is None else penalty_rows(
            held, len(self.vocab), self.card.get("decoding", {}).get("hold_penalty", HOLD_PENALTY))
        return self._search(decoder, np.asarray(views, dtype="float32")[None], beam, max_length,
                            length_penalty, wanted, penalties)[0]

    def _guides(self, tags: list[list[dict]] | None, guided: bool | None = None,
                guide_threshold: float | None = None, hold_threshold: float | None = None):
        """Per image, the word sets its caption must name and the word ids held back (None
        for either when the guidance says not to)."""
        guide = self.guidance(guided, guide_threshold, hold_threshold)
        if not guide["guided"] or tags is None:
            return None, None
        wanted = [constraints_for(t, self.vocab, guide["guide_threshold"]) for t in tags]
        held = None if guide["hold_threshold"] is None else \
            [held_back(t, self.vocab, guide["hold_threshold"]) for t in tags]
        return wanted, held

    def _search(self, decoder, features: np.ndarray, beam, max_length, length_penalty,
                constraints: list | None = None, penalties: np.ndarray | None = None) -> list[Caption]:
        """``constraints``: per image (or None), as in caption_features."""
        settings = self.decoding(beam, length_penalty)
        if settings["beam"] <= 1 and constraints and any(constraints) and not all(constraints):
            # At a beam of 1 a photo nothing constrains is greedy whatever its neighbours ask:
            # each kind is searched on its own, so that neither reads the other's words.
            captions: list = [None] * len(features)
            for own in ([i for i, c in enumerate(constraints) if not c],
                        [i for i, c in enumerate(constraints) if c]):
                found = self._search(decoder, features[own], beam, max_length, length_penalty,
                                     [constraints[i] for i in own],
                                     None if penalties is None else penalties[own])
                for i, caption in zip(own, found):
                    captions[i] = caption
            return captions
        frequent = self.card.get("decoding", {}).get("shortlist")  # chosen on dev; None: all words
        if frequent:
            decoder = decoder.shortlisted(shortlist(frequent, constraints or ()))
        free = settings["beam"] <= 1 and not any(constraints or ())

        def run(rows: slice) -> list[Caption]:  # each image's search is its own: rows can split
            held = None if penalties is None else penalties[rows]
            own = copy.copy(decoder)  # an Ensemble keeps its search's layout: one per piece
            if free:
                return greedy(own, self.vocab, features[rows], max_length, held)
            return beam_search(own, self.vocab, features[rows], settings["beam"], max_length,
                               settings["length_penalty"], penalties=held,
                               image_constraints=None if constraints is None else constraints[rows],
                               frequent=frequent or None)

        return on_every_core(run, len(features))

    def caption(self, images, beam: int | None = None, recursive: bool = False,
                output: Path | None = None, overwrite: bool = False, attention: bool | Path = False,
                guided: bool | None = None, guide_threshold: float | None = None,
                hold_threshold: float | None = None, objects: bool = False, chunk: int = 256,
                progress: bool = True, link_images: bool = False) -> list[dict]:
        """A caption for every image: ``{"image", "caption", "score", "tags"}`` or ``{"image", "error"}``
        (``tags``: the photo's best merged tags, e.g. ``{"tag": "cat", "score": 0.93, "source":
        "imagenet"}``, a score being the calibrated chance that a person names the word, see
        captioner.tagging; absent without an ImageNet head).

        ``images``: a path (file or folder), a PIL image, a numpy array, or a list of these.
        Rows come in the order given (paths that cannot be found first); the batch goes on.
        With ``output`` (.jsonl, .csv, .json or .html) the rows are also written there, atomically
        (an .html gallery embeds thumbnails, or links the photos with ``link_images``); a
        re-run with the same output and settings skips the images it already holds, an
        interrupted run resumes from its journal, and a re-run with other settings needs
        ``overwrite``. ``attention`` (attention decoders): True adds each word's weights over
        the encoder's regions to the rows (``"attention"``); a folder also gets one PNG per
        image, the photo lit where each word looked. ``guided``: a tag whose score reaches
        ``guide_threshold`` must be named by the caption (constrained beam search), and words of
        objects whose tags stay below ``hold_threshold`` are held back; all default to the card's
        choice, else to the measured default. ``objects``: also run the object detector (about ten
        times the encoder's work): rows gain ``"objects"`` (label, score, box in the photo's
        pixels) and its words join the tags.
        """
        folder = None if attention in (True, False) else Path(attention)
        if attention is not False:
            self._need_attention()
        settings = {**self.run_settings(beam, guided, guide_threshold, hold_threshold),
                    "attention": attention is not False, "objects": bool(objects)}
        items, problems = gather_images(images, recursive)
        if output is not None and any(not isinstance(item, Path) for item in items):
            raise CaptionerError("an output file needs image files to resume from; in-memory images "
                                 "(PIL or numpy) can only be captioned without output=")
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        with result_writer(output, key="image", kind="images", settings=settings,
                           overwrite=overwrite, link_images=link_images) as writer:
            writer.add([{"image": display_path(p), "error": reason} for p, reason in problems
                        if not writer.done(p)])
            todo = [item for item in items if not (isinstance(item, Path) and writer.done(item))]
            guide = {k: settings[k] for k in GUIDE_KEYS}
            for done, rows in self._caption_stream(todo, settings["beam"], progress,
                                                   attention is not False, guide, chunk, objects):
                if folder is not None:
                    self._draw_attention(done, rows, folder)
                writer.add(rows)
            return writer.rows

    def caption_items(self, items: list, beam: int | None = None, progress: bool = True,
                      attention: bool = False, guided: bool | None = None,
                      guide_threshold: float | None = None,
                      hold_threshold: float | None = None, objects: bool = False) -> list[dict]:
        """Caption exactly these files or in-memory images, in order (``caption`` without the
        gathering of paths and the output file)."""
        guide = self.guidance(guided, guide_threshold, hold_threshold)
        stream = self._caption_stream(items, beam, progress, attention, guide, objects=objects)
        return [row for _, rows in stream for row in rows]

    def _caption_stream(self, items: list, beam, progress: bool, attention: bool, guide: dict,
                        chunk: int = STREAM_CHUNK, objects: bool = False):
        """Yield (items, rows) in input order, about ``chunk`` images at a time, from one input
        pipeline and one progress bar for the whole run. Each chunk is captioned in a second
        thread while the encoder goes on with the next (both release the GIL)."""
        kinds = (self.feature_kind, *self.tag_kinds())
        errors: dict[int, str] = {}
        stream = iter_features(items, self.encoder, kinds, ENCODE_BATCH, True, progress, errors)
        with ThreadPoolExecutor(max_workers=1) as captioning:
            waiting, start, found = None, 0, {}
            for i, features in itertools.chain(stream, [(len(items), None)]):
                if features is not None:
                    found[i] = features
                    if len(found) < chunk:
                        continue
                end = i + 1 if features is not None else len(items)
                job = captioning.submit(self._rows, items[start:end], start, found, errors, beam,
                                        attention, guide, objects)
                if waiting is not None:
                    yield waiting.result()
                waiting, start, found = job, end, {}
            if waiting is not None:
                yield waiting.result()

    def _rows(self, items: list, offset: int, found: dict[int, dict], errors: dict[int, str], beam,
              attention: bool, guide: dict, objects: bool = False) -> tuple[list, list[dict]]:
        """The rows of ``items`` (numbered from ``offset``): captions of the ``found`` features,
        the others' ``errors``."""
        rows = [{"image": item_name(item), "error": errors.get(offset + n)} for n, item in enumerate(items)]
        if not found:
            return items, rows
        batch = {kind: np.stack([f[kind] for f in found.values()]) for kind in next(iter(found.values()))}
        features = as_regions(batch[self.feature_kind])
        boxes = detect_objects([items[i - offset] for i in found]) if objects else None
        tags = self.tags_of(batch, boxes)
        captions = self.caption_tagged(features, tags, beam, **guide)
        weights = self.attention_weights(features, [c.text for c in captions]) if attention else None
        for j, i in enumerate(found):
            row = {"image": rows[i - offset]["image"], "caption": captions[j].text,
                   "score": round(captions[j].score, 4)}
            if tags is not None:
                row["tags"] = tags[j][:TAG_COUNT]
            if boxes is not None:
                row["objects"] = boxes[j]
            if weights is not None:
                row["attention"] = np.round(weights[j], 4).tolist()
            rows[i - offset] = row
        return items, rows

    def attention_weights(self, features: np.ndarray, captions: list[str]) -> list[np.ndarray]:
        """For each caption, its words' attention over the regions: (words, regions) arrays."""
        self._need_attention()
        ids = [self.vocab.encode(text, add_start_end=False) for text in captions]
        tokens = np.zeros((len(ids), max(map(len, ids), default=0) + 1), dtype="int32")
        for row, words in enumerate(ids):
            tokens[row, : len(words) + 1] = [Vocabulary.START_ID, *words]
        # Step t reads token t and attends to choose word t + 1: word i's weights are at i - 1.
        alphas = np.asarray(self.step().attention_maps(features, tokens))
        return [alphas[row, : len(words)] for row, words in enumerate(ids)]

    def _need_attention(self) -> None:
        known = self._known
        parts = known.members if isinstance(known, Ensemble) else [known]
        if not any(part.feature_kind == "spatial" for part in parts):  # attention decoders read maps
            raise CaptionerError("attention maps need an attention decoder; this bundle's is "
                                 "show-and-tell (train one with --decoder attention)")

    def attention_figure(self, image, row: dict | None = None):
        """A PIL image: the photo, then one panel per word of its caption, lit where the word
        looked. ``row``: the image's row from ``caption(..., attention=True)`` (made if absent)."""
        items, problems = ([image], []) if isinstance(image, InMemoryImage) else gather_images(image)
        if not items:
            raise ImageError(f"{problems[0][0]}: {problems[0][1]}")
        item = items[0]
        if row is None:
            row = self.caption_items([item], progress=False, attention=True)[0]
        if "attention" not in row:
            raise CaptionerError(f"{row['image']}: {row.get('error', 'no attention weights in this row')}")
        photo = item.pixels if isinstance(item, InMemoryImage) else load_image(item, size=PANEL)
        weights = np.asarray(row["attention"]).reshape(-1, *self.encoder.spatial_shape[:2])
        return attention_figure(photo, row["caption"].split(), weights)

    def _draw_attention(self, items: list, rows: list[dict], folder: Path) -> None:
        """One PNG per captioned image: the photo lit where each word looked."""
        for item, row in zip(items, rows):
            if "attention" not in row:
                continue
            tag = hashlib.sha256(row["image"].encode("utf-8", "replace")).hexdigest()[:6]
            name = f"{Path(row['image']).stem or 'image'}-{tag}.png"
            with atomic_path(folder / name, suffix=".png") as tmp:
                self.attention_figure(item, row).save(tmp, format="PNG")

    def next_words(self, image, prefix: str = "", k: int = 10) -> list[tuple[str, float]]:
        """The k most likely next words after ``prefix`` for one image (path, PIL, array or feature)."""
        if isinstance(image, np.ndarray) and image.ndim == 1:
            feature = image
        else:
            items, problems = gather_images(image)
            if problems or len(items) != 1:
                reason = problems[0][1] if problems else f"expected one image, found {len(items)}"
                raise ImageError(f"{display_path(problems[0][0]) if problems else image}: {reason}")
            result = extract_features(items, self.encoder, kinds=(self.feature_kind,), progress=False)
            if result.errors:
                raise ImageError(f"{item_name(result.errors[0][0])}: {result.errors[0][1]}")
            feature = self._features(result)[0]
        decoder = self.step()
        if isinstance(decoder, Ensemble):  # it reads groups of views: this image is one
            feature = np.asarray(feature)[None]
        return next_words(decoder, self.vocab, feature, prefix, k)

    # --- evaluation and training -----------------------------------------------------------
    def evaluate(self, data: Path, images: Path, split: str | None = "test", beam: int | None = None,
                 per_image: bool | Path = False, guided: bool | None = None,
                 guide_threshold: float | None = None, hold_threshold: float | None = None,
                 progress: bool = True) -> dict:
        """BLEU-1..4, CIDEr-D and the hallucination rates (CHAIR, 0-100) of this captioner on one
        split (None: all) of a data set, decoded as ``caption`` decodes (the card's beam and
        guidance unless told otherwise). A data set without splits is all dev, so its halves
        ``dev-select`` and ``dev-report`` (by a hash of the image name) can be scored apart.

        ``per_image``: True adds each image's scores and caption to the result; a ``.jsonl``
        path also writes them there (checked before any work, like every output).
        """
        writer = None
        settings = {"data": str(data), "split": split,
                    **self.run_settings(beam, guided, guide_threshold, hold_threshold)}
        if per_image not in (True, False):
            check_per_image(per_image)
            writer = ResultWriter(per_image, key="image", kind="images", settings=settings)
        with writer or contextlib.nullcontext():
            records = dev_when_unsplit(read_records(Path(data)))
            present = sorted({r.split for r in records if r.split})
            if "dev" in present:  # its two halves: selection and report
                present += list(DEV_PARTS)
            if split and split not in present:
                have = ", ".join(present) if present else "no splits at all"
                raise CaptionerError(f"{data}: has no {split!r} split; it has {have} "
                                     "(choose one with --split, or --split '' for all images)")
            splits = (split,) if split else (*[p for p in present if p not in DEV_PARTS], None)
            subset, problems = load_split(records, Path(images), self.encoder, splits, progress,
                                          self.feature_kind)
            if not subset.names:
                raise CaptionerError(f"none of the images of the {split or 'data set'} split were "
                                     f"found under {images} ({len(problems)} missing or unreadable)")
            guide = {k: settings[k] for k in GUIDE_KEYS}
            scores = evaluate_split(self, subset, beam, bool(per_image), guide) | {"problems": problems}
            scores.update(guide)
            if writer is not None:
                writer.add([{"image": name, **row} for name, row in scores["per_image"].items()
                            if not writer.done(name)])
        return scores

    @classmethod
    def train(cls, data: Path, images: Path, out: Path, encoder: str = DEFAULT_ENCODER,
              config: TrainConfig | None = None, resume: bool = False, overwrite: bool = False,
              lm_data: Path | list[Path] | None = None, command: str | None = None,
              progress: bool = True, strategy: str = "default",
              language_model: Path | None = None) -> Captioner:
        """Train on the train split (plus unsplit images), stop on dev, save a bundle at ``out``.
        ``strategy``: one of STRATEGIES; only the chief of several workers writes ``out``.
        ``language_model``: where to keep the weights language-model pre-training leaves (for
        ``captioning.text_words``; default: with the checkpoints, which the bundle drops)."""
        from captioner.captioning.distribute import make_strategy, worker_output
        from captioner.captioning.train import train_captioner

        spread = make_strategy(strategy)  # first: multiworker starts before TensorFlow runs anything
        with worker_output(Path(out), spread, fresh=overwrite) as target:
            decoder, vocab, card, select, report = train_captioner(
                data, images, target, get_encoder(encoder), config or TrainConfig(), resume=resume,
                overwrite=overwrite, lm_data=lm_data, command=command, progress=progress,
                strategy=spread, language_model=language_model)
            return cls(decoder, vocab, card)._finish(select, report, target)

    def finetune(self, data: Path, images: Path, out: Path, resume: bool = False,
                 overwrite: bool = False, command: str | None = None, progress: bool = True,
                 **changes) -> Captioner:
        """Self-critical fine-tuning on CIDEr-D (Rennie et al. 2017) with the train split of
        ``data``; saves a new bundle at ``out``. ``changes``: TrainConfig knobs (epochs,
        learning_rate, batch_size, scst_samples, patience, seed)."""
        from captioner.captioning.self_critical import finetune_captioner, finetune_config

        if isinstance(self.decoder, Ensemble):
            raise CaptionerError("fine-tune each member of an ensemble, then ensemble them again")
        config = finetune_config(self.card.get("config", {}), **changes)
        decoder, card, select, report = finetune_captioner(
            self.decoder, self.vocab, self.card, data, images, out, self.encoder, config,
            resume=resume, overwrite=overwrite, command=command, progress=progress)
        return Captioner(decoder, self.vocab, card)._finish(select, report, out)

    def choose_and_save(self, data: Path, images: Path, out: Path, progress: bool = True) -> Captioner:
        """Choose the decoding on the dev-select half of ``data``, score dev-report, save at ``out``
        (how an ensemble of trained captioners becomes a bundle)."""
        from captioner.captioning.train import load_splits

        check_target(out)
        _, (_, select, report), _ = load_splits(data, images, self.encoder, self.feature_kind, progress)
        return self._finish(select, report, out)

    def _finish(self, select: Split, report: Split, out: Path) -> Captioner:
        """Choose the decoding on dev-select, score dev-report once, save the bundle."""
        started = time.monotonic()
        self.card["decoding"], chosen = choose_decoding(self, select)
        self.card["decoding"]["seconds"] = round(time.monotonic() - started, 3)
        self.card["scores"] = {"dev-select": _round(chosen)}
        if report.names:  # scored once, after every choice: what a README may quote
            self.card["scores"]["dev-report"] = {
                "greedy": _round(evaluate_split(self, report, beam=1)),
                "chosen": _round(evaluate_split(self, report))}
        self.save(out)
        return self


DECODING_GRID = {"beam": (1, 3, 5), "length_penalty": (0.0, 0.5, 1.0, 2.0)}


def choose_decoding(captioner: Captioner, select: Split) -> tuple[dict, dict]:
    """The beam width and length penalty with the best CIDEr-D (then BLEU-4) on the selection
    half of dev, for the card (every caption and evaluate run reads it), and their scores."""
    tried = []
    for beam in DECODING_GRID["beam"]:
        for penalty in DECODING_GRID["length_penalty"] if beam > 1 else (0.0,):
            captioner.card["decoding"] = {"beam": beam, "length_penalty": penalty}
            scores = evaluate_split(captioner, select)
            tried.append(((scores["CIDEr-D"], scores["BLEU-4"]), beam, penalty, scores))
    (cider, bleu), beam, penalty, scores = max(tried, key=lambda t: (t[0], -t[1]))
    return {"beam": beam, "length_penalty": penalty, "chosen_by": "dev-select CIDEr-D, then BLEU-4",
            "dev_select": {"CIDEr-D": round(cider, 2), "BLEU-4": round(bleu, 2)}}, scores


def evaluate_split(captioner: Captioner, split: Split, beam: int | None = None,
                   per_image: bool = False, guide: dict | None = None) -> dict:
    """Scores of a captioner on an already-encoded split; free captions unless ``guide`` (from
    ``Captioner.guidance``) turns guidance on."""
    tags = None
    if guide and guide["guided"] and captioner.tagger is not None:
        # The split's files were read once already; what the tags read comes from the cache.
        found = extract_features(split.paths, captioner.encoder, captioner.tag_kinds(), progress=False)
        if "spatial" not in found.features and captioner.feature_kind == "spatial":
            found.features["spatial"] = np.asarray(split.features)  # same paths, same order
        by_path = dict(zip(found.paths, captioner.tags_of(found.features)))
        tags = [by_path.get(path, []) for path in split.paths]
    caps = captioner.caption_tagged(split.features, tags, beam, **(guide or {}))
    hyps = {n: c.text for n, c in zip(split.names, caps)}
    refs = dict(zip(split.names, split.captions))
    scores = evaluate_captions(hyps, refs, per_image=per_image) | hallucination(hyps, refs)
    scores["images"] = len(split.names)
    if per_image:
        for name in split.names:
            scores["per_image"][name]["caption"] = hyps[name]
    return scores


def detect_objects(items: list) -> list[list[dict]]:
    """The shipped detector's boxes in each file or in-memory image (read again at full size:
    the encoder saw a 224-pixel copy)."""
    from captioner.tagging.objects import default_detector

    detector = default_detector()
    return [detector.detect([item.pixels if isinstance(item, InMemoryImage) else
                             load_image(item if isinstance(item, Path) else Path(item.name),
                                        data=getattr(item, "data", None))])[0] for item in items]


def _keras_decoder(folder: Path):
    """The Keras decoder of a captioner bundle (an ``Ensemble`` of its decoders)."""
    from captioner.captioning.attention import AttentionDecoder
    from captioner.captioning.decoder import CaptionDecoder

    bundle = load_bundle(folder)
    for part in (bundle.model, *bundle.members):
        if not isinstance(part, (CaptionDecoder, AttentionDecoder)):
            raise BundleError(f"{folder}: holds a {type(part).__name__}, not an image captioner")
    return Ensemble([bundle.model, *bundle.members]) if bundle.members else bundle.model


def _round(scores: dict) -> dict:
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in scores.items()}
