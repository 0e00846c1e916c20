"""VideoTagger: per-clip tags and captions for video files (part of the public API).

Two ways to tag: the default, from the bundled image models alone (the frames' merged photo
tags pooled over the clip, see captioner.video.default_tags), or a trained ClipModel bundle
(an LSTM over the clip's frame features, see captioner.video.clip_model).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from captioner.captioning.bundle import (
    Bundle,
    card_digest,
    check_target,
    load_bundle,
    make_card,
    save_bundle,
)
from captioner.captioning.captioner import Captioner
from captioner.captioning.search import greedy
from captioner.data.paths import VIDEO_EXTENSIONS, display_path, expand_paths
from captioner.data.text import Vocabulary
from captioner.data.video_labels import read_video_labels
from captioner.encoders import DEFAULT_ENCODER
from captioner.encoders.features import as_regions
from captioner.encoders.registry import get_encoder
from captioner.errors import BundleError, CaptionerError
from captioner.results.journal import result_writer
from captioner.topk import top_k_indices
from captioner.video.config import ClipTrainConfig, TagOptions
from captioner.video.default_tags import clip_tags, representative_frame
from captioner.video.frame_features import OBJECTS, FrameFeatures, frame_features
from captioner.video.windows import assign_rows, cut_windows, fixed_windows

# Frames captioned per call: few calls (each sets the search up anew), and at most 16 MB of
# Lite0 maps in memory at once.
CAPTION_BATCH = 64


class VideoTagger:
    """Tags and captions every clip of a video's timeline."""

    def __init__(self, captioner=None, bundle: Bundle | None = None):
        if (captioner is None) == (bundle is None):
            raise CaptionerError("give a VideoTagger either an image captioner or a clip-model bundle")
        self.captioner, self.bundle = captioner, bundle
        name = bundle.card["encoder"] if bundle else captioner.card["encoder"]
        self.encoder = captioner.encoder if captioner else get_encoder(name)

    @classmethod
    def default(cls) -> VideoTagger:
        """The tagger that needs no video training: the bundled image captioner and ImageNet labels."""
        return cls(captioner=Captioner.from_pretrained())

    @classmethod
    def load(cls, folder: Path) -> VideoTagger:
        """A tagger from a clip-model bundle written by ``captioner train-video``."""
        from captioner.video.clip_model import ClipModel  # Keras: only for a trained clip model

        bundle = load_bundle(folder)
        if not isinstance(bundle.model, ClipModel):
            raise BundleError(f"{folder}: holds a {type(bundle.model).__name__}, not a clip model")
        return cls(bundle=bundle)

    def save(self, folder: Path) -> Path:
        """Write a trained tagger as a bundle folder."""
        if self.bundle is None:
            raise CaptionerError("the default tagger has nothing to save: it is the bundled captioner")
        return save_bundle(folder, self.bundle)

    def run_settings(self, options: TagOptions) -> dict:
        """What makes this tagger's rows: the model (by its card) and the options."""
        card = self.bundle.card if self.bundle else self.captioner.card
        return {"model": card_digest(card), **asdict(options), "fps": self.fps(options)}

    def fps(self, options: TagOptions) -> float:
        """Frames sampled per second: the option, else the rate the clip model was trained at, else 1."""
        return float(options.fps or (self.bundle.card.get("fps", 1.0) if self.bundle else 1.0))

    def tag(self, videos, options: TagOptions | None = None, recursive: bool = False,
            output: Path | None = None, overwrite: bool = False, progress: bool = True) -> list[dict]:
        """Rows for every clip of every video found (``{"video", "error"}`` for a bad file).

        ``videos``: a path (file or folder) or a list of them. With ``output`` (.jsonl, .csv,
        .vtt or .srt for one video, or .html: a timeline page) the rows are written there
        atomically; a re-run with the same settings skips the videos already done, an
        interrupted run resumes, and a re-run with other settings needs ``overwrite``.
        """
        options = options or TagOptions()
        if isinstance(videos, (str, os.PathLike)):
            videos = [videos]
        files, problems = expand_paths(videos, VIDEO_EXTENSIONS, recursive)
        with result_writer(output, key="video", kind="videos", settings=self.run_settings(options),
                           overwrite=overwrite) as writer:
            writer.expect(files)  # a .vtt/.srt holds one video: more are refused before any work
            writer.add([{"video": display_path(p), "error": reason} for p, reason in problems
                        if not writer.done(p)])
            todo = [p for p in files if not writer.done(p)]
            # One video ahead: the next one decodes and encodes while this one is captioned.
            # Leaving early (an error, Ctrl-C) cancels it, so the pool's exit need not wait for
            # that whole video.
            cancel = threading.Event()
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="captioner-next") as pool:
                try:
                    ahead = pool.submit(self.video_features, todo[0], options, cancel) if todo else None
                    for i, path in enumerate(tqdm(todo, desc="tagging", unit="video",
                                                  disable=not progress)):
                        video = ahead.result()
                        ahead = (pool.submit(self.video_features, todo[i + 1], options, cancel)
                                 if i + 1 < len(todo) else None)
                        writer.add(self._rows(path, video, options))
                finally:
                    cancel.set()
            return writer.rows

    def tag_video(self, path: Path, options: TagOptions) -> list[dict]:
        """The rows of one video's clips; a video that cannot be read gives one error row."""
        return self._rows(path, self.video_features(path, options), options)

    def video_features(self, path: Path, options: TagOptions,
                       cancel: threading.Event | None = None) -> FrameFeatures | str:
        """The video's frame features, or why it cannot be read (``cancel``: see frame_features)."""
        if self.bundle:
            kinds = ("pooled",)
        else:  # the frames' tags need their detections too
            tagged = self.captioner.tag_kinds()
            kinds = tuple(dict.fromkeys(("pooled", self.captioner.feature_kind, *tagged,
                                         *((OBJECTS,) if tagged else ()))))
        try:
            # Decoded and encoded once per (file, fps, encoder): other clip settings reuse it.
            return frame_features(path, self.encoder, self.fps(options), kinds, cancel=cancel)
        except CaptionerError as exc:
            return str(exc).removeprefix(f"{path}: ")
        except Exception as exc:  # noqa: BLE001 - OpenCV/FFmpeg fail in many ways on one bad file
            return f"cannot read ({type(exc).__name__}: {exc})"

    def _rows(self, path: Path, video: FrameFeatures | str, options: TagOptions) -> list[dict]:
        """One row per clip of a video from its frame features, or its error row."""
        if isinstance(video, str):
            return [{"video": display_path(path), "error": video}]
        windows = (cut_windows(video.cuts, video.duration) if options.shots
                   else fixed_windows(video.duration, options.clip_seconds, options.overlap))
        clips = assign_rows(video.times, windows)
        tags, captions = (self._trained(video.features, clips, options) if self.bundle
                          else self._default(video.features, clips, options))
        return [
            {"video": display_path(path), "clip": i, "start": round(start, 3), "end": round(end, 3),
             "tags": tag_list, "caption": caption}
            for i, ((start, end), tag_list, caption) in enumerate(zip(windows, tags, captions))
        ]

    def frame_results(self, outputs: dict) -> tuple[list[list[dict]], list[str]]:
        """Every frame's merged photo tags and guided caption, from the video's encoder outputs
        (and its detections, when they were made)."""
        read = self.captioner.feature_kind  # spatial maps on disk: read a batch at a time
        kinds = tuple(dict.fromkeys((read, *self.captioner.tag_kinds())))
        frame_tags, frame_captions = [], []
        for start in range(0, len(outputs[read]), CAPTION_BATCH):
            part = {kind: np.asarray(outputs[kind][start : start + CAPTION_BATCH], np.float32) for kind in kinds}
            batch = as_regions(part[read])
            objects = outputs[OBJECTS][start : start + CAPTION_BATCH] if OBJECTS in outputs else None
            tags = self.captioner.tags_of(part, objects)  # None without an ImageNet head
            frame_tags += tags if tags is not None else [[] for _ in batch]
            frame_captions += [c.text for c in self.captioner.caption_tagged(batch, tags)]
        return frame_tags, frame_captions

    def _default(self, outputs: dict, clips: list[list[int]], options: TagOptions):
        maps = outputs[self.captioner.feature_kind]
        frame_tags, frame_captions = self.frame_results(outputs)
        tags, captions = [], []
        for rows in clips:
            found = clip_tags([frame_tags[r] for r in rows], [frame_captions[r] for r in rows])
            tags.append(found[: options.top_k])
            if options.clip_caption == "frames":  # this clip's maps only
                captions.append(self.captioner.caption_views(
                    as_regions(np.asarray(maps[rows], np.float32)), tags=found).text)
            else:  # the frame most like the clip: its caption, guided by its own tags
                captions.append(frame_captions[rows[representative_frame(outputs["pooled"][rows])]])
        return tags, captions

    def _trained(self, outputs: dict, clips: list[list[int]], options: TagOptions):
        from captioner.video.train import pad_clips

        model, bundle = self.bundle.model, self.bundle
        frames = pad_clips([outputs["pooled"][rows] for rows in clips], bundle.card.get("max_frames", 32))
        tags = [[] for _ in clips]
        if model.num_tags:
            probs = np.asarray(model.predict_on_batch({"frames": frames})["tags"])
            for i, row in enumerate(probs):
                best = top_k_indices(row, options.top_k)
                tags[i] = [{"tag": bundle.tags[j], "score": round(float(row[j]), 4)} for j in best]
        captions = [""] * len(clips)
        if model.decoder is not None:
            encoding = np.asarray(model.encode(frames))
            captions = [c.text for c in greedy(model.decoder, bundle.vocab, encoding)]
        return tags, captions

    @classmethod
    def train(cls, labels: Path, out: Path, videos: Path | None = None, fps: float = 2.0,
              encoder: str = DEFAULT_ENCODER, config: ClipTrainConfig | None = None,
              command: str | None = None, progress: bool = True) -> VideoTagger:
        """Train a clip model on labelled clips (see captioner.data.video_labels); saves a bundle."""
        from captioner.video.train import fit_clip_model, tag_matrix

        config = config or ClipTrainConfig()
        check_target(out)  # before any work: never train towards a folder that cannot be written
        records = read_video_labels(labels, videos)
        enc = get_encoder(encoder)
        clips, kept, problems = [], [], []
        for record in tqdm(records, desc="encoding clips", unit="clip", disable=not progress):
            try:
                clips.append(clip_features(record.path, enc, fps))
                kept.append(record)
            except CaptionerError as exc:
                problems.append(str(exc))
        if not kept:
            raise CaptionerError(f"{labels}: none of the {len(records)} clips could be read")
        tag_names = sorted({t for r in kept for t in r.tags}) or None
        tags = tag_matrix([r.tags for r in kept], tag_names) if tag_names else None
        captions = [list(r.captions) for r in kept] if any(r.captions for r in kept) else None
        vocab = (Vocabulary.build([c for caps in captions for c in caps], min_count=config.min_count)
                 if captions else None)
        model = fit_clip_model(clips, tags, captions, config, vocab=vocab)
        card = make_card(enc, config, command, {"labels": str(labels), "clips": len(kept)}, problems,
                         fps=fps, max_frames=config.max_frames)
        tagger = cls(bundle=Bundle(model, card, vocab=vocab, tags=tag_names))
        tagger.save(out)
        return tagger


def clip_features(path: Path, encoder, fps: float) -> np.ndarray:
    """Pooled features (T, D) of a whole clip's frames sampled at ``fps`` (cached)."""
    return frame_features(path, encoder, fps, ("pooled",)).features["pooled"]


__all__ = ["TagOptions", "VideoTagger", "clip_features"]
