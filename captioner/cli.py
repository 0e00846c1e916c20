"""The ``captioner`` command: argument parsing, then one public API call per subcommand.

Parsing needs no TensorFlow (``captioner --help`` and a bad flag answer at once); each
subcommand imports the API it calls. A user's mistake prints one line, never a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import shlex
import signal
import sys
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace

from captioner.captioning.config import BOUNDS as TRAIN_BOUNDS
from captioner.captioning.config import (
    DECODERS,
    FINETUNE_DEFAULTS,
    FINETUNE_FLAGS,
    MONITORS,
    SCST_BASELINES,
    STRATEGIES,
    TrainConfig,
)
from captioner.checks import MAX_BEAM, number_in
from captioner.encoders import DEFAULT_ENCODER
from captioner.errors import CaptionerError
from captioner.files import printable
from captioner.serving import FORMATS as EXPORT_FORMATS
from captioner.video.config import (
    CLIP_CAPTIONS,
    CLIP_TRAIN_BOUNDS,
    MAX_CLIP_SECONDS,
    MAX_FPS,
    MIN_CLIP_SECONDS,
    MIN_FPS,
    ClipTrainConfig,
    TagOptions,
)

MAX_TOP_K = 1000


class _Parser(argparse.ArgumentParser):
    """argparse that suggests the closest subcommand or option for a typo."""

    def _known_words(self) -> list[str]:
        words = [o for a in self._actions for o in a.option_strings]
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    words += [name, *sub._known_words()]
        return words

    def error(self, message: str):
        known = self._known_words()
        words = [w.split("=")[0] for w in sys.argv[1:]]
        unknown = [w for w in words if w.startswith("-") and w not in known]
        top = any(isinstance(a, argparse._SubParsersAction) for a in self._actions)
        if top and words and words[0] not in known:  # only the top level knows subcommands
            unknown.insert(0, words[0])
        for word in unknown:
            close = difflib.get_close_matches(word, known, n=1)
            if close:
                message += f" (did you mean {close[0]}?)"
                break
        super().error(message)


def _number(name: str, low: float, high: float, integer: bool = False, low_open: bool = False):
    """An argparse type: a finite number within bounds, or a one-line usage error."""

    def parse(text: str):
        try:
            return number_in(name, text, low, high, integer=integer, low_open=low_open)
        except CaptionerError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = "integer" if integer else "number"
    return parse


def _print_jsonl(rows: list[dict]) -> None:
    for row in rows:
        print(json.dumps(row, ensure_ascii=False))


def _inputs(args) -> list[Path]:
    """The paths given, plus the bundled sample photos with --samples."""
    paths = list(args.paths)
    if args.samples:
        from captioner.data.samples import sample_photos

        paths += sample_photos()
    if not paths:
        raise CaptionerError("no images given: name files or folders, or use --samples")
    return paths


def _check_output(path: Path | None, kind: str) -> None:
    """Refuse an output suffix the writers cannot hold ``kind`` rows in, before any model loads."""
    if path is not None:
        from captioner.results.writers import output_writer  # their table of suffixes

        output_writer(path, kind)


def _check_models(paths: list[Path] | None) -> None:
    """Refuse a model path that is no folder at all before TensorFlow is imported to read it."""
    for path in paths or []:
        if not path.is_dir():
            raise CaptionerError(f"{path}: no such bundle folder (name a folder written by "
                                 "captioner train)")


def _check_data(data: Path, images: Path) -> None:
    """Refuse a caption file or an image folder that is not there, before any model loads."""
    if not data.is_file():
        raise CaptionerError(f"{data}: " + ("is a folder, expected a caption file" if data.is_dir()
                                            else "caption file not found"))
    if not images.is_dir():
        raise CaptionerError(f"{images}: no such image folder")


def _exit_code(rows: list[dict]) -> int:
    """1 when every item failed, else 0."""
    return 1 if rows and all("error" in r for r in rows) else 0


def _tag_list(row: dict, lead: str) -> str:
    tags = row.get("tags")
    return lead + ", ".join(f"{t['tag']} ({t['score']:.2f})" for t in tags) if tags else ""


def _print_rows(rows: list[dict], key: str, describe) -> int:
    """One line per row, ERROR and the reason for a file that failed; returns the exit code."""
    for row in rows:
        print(f"{row[key]}: ERROR {row['error']}" if "error" in row else f"{row[key]}{describe(row)}")
    return _exit_code(rows)


def _report(rows: list[dict], output: Path, what: str) -> int:
    """The one-line summary of a run with an output file, and the first few failures."""
    bad = [r for r in rows if "error" in r]
    if what == "images":
        print(f"{len(rows)} images ({len(bad)} unreadable) in {output}")
    else:
        print(f"{len(rows) - len(bad)} clips, {len(bad)} unreadable videos, in {output}")
    for row in bad[:10]:
        print(f"  {row.get('image') or row.get('video')}: {row['error']}", file=sys.stderr)
    return _exit_code(rows)


def cmd_classify(args) -> int:
    paths = _inputs(args)  # before the import: it loads TensorFlow
    from captioner.encoders.classify import classify

    rows = classify(paths, k=args.top_k, recursive=args.recursive, encoder=args.encoder)
    if args.json:
        _print_jsonl(rows)
        return _exit_code(rows)
    return _print_rows(rows, "image", lambda r: ": " + ", ".join(
        f"{x['label']} ({x['score']:.3f})" for x in r["labels"]))


def cmd_caption(args) -> int:
    if args.link_images and (args.output is None or args.output.suffix.lower() != ".html"):
        raise CaptionerError("--link-images is for an .html gallery: add -o NAME.html")
    paths = _inputs(args)  # the arguments' own mistakes answer before the model loads
    _check_output(args.output, "images")
    captioner = _captioner(args.model)
    rows = captioner.caption(paths, beam=args.beam, recursive=args.recursive,
                             output=args.output, overwrite=args.overwrite,
                             attention=args.attention or args.attention_maps, guided=args.guided,
                             guide_threshold=args.guide_threshold, hold_threshold=args.hold_threshold,
                             objects=args.objects, link_images=args.link_images)
    if args.output is None:
        return _print_rows(rows, "image", lambda r: f": {r['caption']}" + _tag_list(r, " | "))
    return _report(rows, args.output, "images")


def cmd_tag(args) -> int:
    options = TagOptions(clip_seconds=args.clip_seconds, overlap=args.overlap, fps=args.fps,
                         top_k=args.top_k, shots=args.shots,
                         clip_caption=args.clip_caption)  # checked before any model loads
    _check_output(args.output, "videos")
    _check_models([args.model] if args.model else None)
    from captioner.video.tagger import VideoTagger

    tagger = VideoTagger.load(args.model) if args.model else VideoTagger.default()
    rows = tagger.tag(args.videos, options, recursive=args.recursive, output=args.output,
                      overwrite=args.overwrite)
    if args.output is None:
        return _print_rows(rows, "video", lambda r: f" [{r['start']:.1f}-{r['end']:.1f}s] {r['caption']}"
                           + _tag_list(r, " | "))
    return _report(rows, args.output, "clips")


def _overrides(args, config_class) -> dict:
    return {f.name: getattr(args, f.name) for f in fields(config_class)
            if getattr(args, f.name, None) is not None}


def cmd_train(args) -> int:
    from captioner.captioning.captioner import Captioner

    config = TrainConfig(**_overrides(args, TrainConfig))
    captioner = Captioner.train(args.data, args.images, args.out, encoder=args.encoder, config=config,
                                resume=args.resume, overwrite=args.overwrite, lm_data=args.lm_data,
                                command=shlex.join(["captioner", *args.argv]), strategy=args.strategy,
                                language_model=args.save_language_model)
    print(f"saved {args.out}")
    decoding = captioner.card["decoding"]
    print(f"decoding chosen on dev-select: beam {decoding['beam']}, "
          f"length penalty {decoding['length_penalty']}")
    for name, scores in captioner.card["scores"].get("dev-report", {}).items():
        print(f"dev-report {name}: " + _score_line(scores))
    return 0


def cmd_train_concepts(args) -> int:
    from captioner.captioning.dataset import load_split, read_records
    from captioner.encoders.registry import get_encoder
    from captioner.files import atomic_write_text, json_text
    from captioner.tagging.concept_training import per_word_ap, train_concept_tagger

    encoder, records = get_encoder(args.encoder), read_records(args.data)
    train, select, report = (load_split(records, args.images, encoder, names, kind="spatial")[0]
                             for names in (("train", None), ("dev-select",), ("dev-report",)))
    tagger = train_concept_tagger(train.features, train.captions, encoder.name, epochs=args.epochs)
    tagger.save(args.out)
    card = {"encoder": encoder.name, "command": shlex.join(["captioner", *args.argv]),
            "train_images": len(train.names), "words": len(tagger.words), "epochs": args.epochs,
            "ap": {"dev-select": per_word_ap(tagger, select.features, select.captions),
                   "dev-report": per_word_ap(tagger, report.features, report.captions)}}
    atomic_write_text(args.out.with_suffix(".json"), json_text(card))
    print(f"saved {args.out}: {len(tagger.words)} words, mean AP dev-report "
          f"{card['ap']['dev-report']['mean']:.1f}")
    return 0


def cmd_calibrate_tags(args) -> int:
    from captioner.captioning.captioner import detect_objects
    from captioner.captioning.dataset import load_split, read_records
    from captioner.data.caption_sets import dev_when_unsplit
    from captioner.encoders.features import extract_features
    from captioner.encoders.registry import get_encoder
    from captioner.files import atomic_write_text, json_text
    from captioner.tagging import calibration
    from captioner.tagging.merge import merge
    from captioner.tagging.tagger import photo_tagger

    if len(args.data) != len(args.images):
        raise CaptionerError("give one --images folder for each --data file, in the same order")
    encoder, tagger = get_encoder(args.encoder), photo_tagger(args.encoder)
    halves = {}  # (data set, half) -> (candidates, references)
    for data, images in zip(args.data, args.images):
        records = dev_when_unsplit(read_records(data))
        for half in ("dev-select", "dev-report"):
            split = load_split(records, images, encoder, (half,), kind="spatial")[0]
            probs = extract_features(split.paths, encoder, ("probabilities",), progress=False)
            halves[data.parent.name, half] = (tagger.candidates(
                probs.features["probabilities"], split.features, detect_objects(split.paths)), split.captions)
    select = [key for key in halves if key[1] == "dev-select"]
    tagger.calibration = calibration.fit([c for k in select for c in halves[k][0]],
                                         [r for k in select for r in halves[k][1]])
    report = {f"{name} {half}": calibration.reliability([merge(c, tagger.calibration) for c in found], refs)
              for (name, half), (found, refs) in halves.items()}
    card = {"params": {s: list(p) for s, p in tagger.calibration.params.items()},
            "curve": tagger.calibration.curve,
            "fitted_on": [f"{name} {half}" for name, half in select],
            "command": shlex.join(["captioner", *args.argv]), "reliability": report}
    atomic_write_text(args.out, json_text(card))
    for name, rel in report.items():
        print(f"{name}: expected calibration error {rel['ece']:.3f} over {rel['tags']} tags")
    print(f"saved {args.out}")
    return 0


def cmd_train_video(args) -> int:
    from captioner.video.tagger import VideoTagger

    config = ClipTrainConfig(**_overrides(args, ClipTrainConfig))
    VideoTagger.train(args.labels, args.out, videos=args.videos, fps=args.fps, encoder=args.encoder,
                      config=config, command=shlex.join(["captioner", *args.argv]))
    print(f"saved {args.out}")
    return 0


SCORE_KEYS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "CIDEr-D", "CHAIR-s", "CHAIR-i", "invented dog",
              "named")


def _score_line(scores: dict) -> str:
    return "  ".join(f"{k} {scores[k]:.2f}" for k in SCORE_KEYS if k in scores)


def _captioner(models: list[Path] | None):
    """The bundled captioner, one bundle, or several decoded as an ensemble."""
    _check_models(models)
    from captioner.captioning.captioner import Captioner

    if not models:
        return Captioner.from_pretrained()
    if len(models) == 1:
        return Captioner.load(models[0])
    return Captioner.ensemble([Captioner.load(m) for m in models])


def cmd_ensemble(args) -> int:
    _check_data(args.data, args.images)
    captioner = _captioner(args.models)
    captioner.choose_and_save(args.data, args.images, args.out)
    print(f"saved {args.out} ({len(args.models)} members)")
    for name, scores in captioner.card["scores"].get("dev-report", {}).items():
        print(f"dev-report {name}: " + _score_line(scores))
    return 0


def cmd_finetune(args) -> int:
    _check_data(args.data, args.images)
    captioner = _captioner([args.model] if args.model else None)
    tuned = captioner.finetune(args.data, args.images, args.out, resume=args.resume,
                               overwrite=args.overwrite, command=shlex.join(["captioner", *args.argv]),
                               **{name: getattr(args, name) for name in FINETUNE_FLAGS})
    print(f"saved {args.out}")
    for name, scores in tuned.card["scores"].get("dev-report", {}).items():
        print(f"dev-report {name}: " + _score_line(scores))
    return 0


def cmd_export(args) -> int:
    from captioner import export

    out = export(_captioner([args.model] if args.model else None), args.out, args.format, args.beam)
    print(f"wrote {args.format} to {out}")
    return 0


def cmd_evaluate(args) -> int:
    if args.per_image is not None:
        from captioner.results.writers import check_per_image

        check_per_image(args.per_image)  # before the model loads, as evaluate() would after
    _check_data(args.data, args.images)
    captioner = _captioner(args.model)
    scores = captioner.evaluate(args.data, args.images, split=args.split or None, beam=args.beam,
                                per_image=args.per_image or False, guided=args.guided,
                                guide_threshold=args.guide_threshold,
                                hold_threshold=args.hold_threshold)
    for problem in scores["problems"][:10]:
        print(f"skipped {problem}", file=sys.stderr)
    beam = captioner.decoding(args.beam)["beam"]
    guided = f", guided at {scores['guide_threshold']:g}" if scores["guided"] else ""
    print(f"{scores['images']} images, beam {beam}{guided}: " + _score_line(scores))
    if args.per_image is not None:
        print(f"per-image results in {args.per_image}")
    return 0


def _config_flags(parser: argparse.ArgumentParser, config, bounds: dict) -> None:
    """One flag per field of a config dataclass, typed and bounded like the field."""
    for name, value in vars(config).items():
        flag = "--" + name.replace("_", "-")
        if name == "monitor":
            parser.add_argument(flag, choices=list(MONITORS), help=f"early stopping on (default {value})")
        elif name == "decoder":
            parser.add_argument(flag, choices=list(DECODERS), help=f"decoder type (default {value})")
        elif name == "scst_baseline":
            parser.add_argument(flag, choices=list(SCST_BASELINES),
                                help=f"what a sample's reward is measured against (default {value})")
        elif name == "pooling":
            parser.add_argument(flag, choices=["lstm", "mean"], help=f"default {value}")
        else:
            low, high = bounds[name]
            kind = _number(name.replace("_", " "), low, high, integer=isinstance(value, int))
            parser.add_argument(flag, type=kind, help=f"default {value}")


def _guide_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--guided", action=argparse.BooleanOptionalAction,
                        help="make the caption name what the classifier is sure of (constrained "
                             "beam search; default: the model card's choice, else off)")
    parser.add_argument("--guide-threshold", type=_number("guide threshold", 0, 1),
                        help="tag score a word needs to guide the caption, 0 to 1 "
                             "(default: the card's, else 0.7)")
    parser.add_argument("--hold-threshold", type=_number("hold threshold", 0, 1),
                        help="with --guided: words of objects (people, dogs, cars...) whose best tag "
                             "scores below this are held back, 0 to 1 (default: the card's, else none)")


def _output_flags(parser: argparse.ArgumentParser, formats: str) -> None:
    parser.add_argument("-o", "--output", type=Path, help=f"write {formats}; resumable")
    parser.add_argument("--overwrite", action="store_true",
                        help="start the output afresh (needed when the settings changed)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand (imports no TensorFlow)."""
    parser = _Parser(prog="captioner", description="Describe pictures and videos in words.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    top_k = _number("top k", 1, MAX_TOP_K, integer=True)

    p = sub.add_parser("classify", help="ImageNet labels for images (checks the encoder's weights)")
    p.add_argument("paths", nargs="*", type=Path, help="image files or folders")
    p.add_argument("--samples", action="store_true", help="add the sample photos that ship with scikit-image")
    p.add_argument("--top-k", type=top_k, default=5, help="labels per image (default 5)")
    p.add_argument("--recursive", "-r", action="store_true", help="look into sub-folders")
    p.add_argument("--encoder", default=DEFAULT_ENCODER, help="encoder name")
    p.add_argument("--json", action="store_true", help="print JSON lines instead of text")
    p.set_defaults(func=cmd_classify)

    beam = _number("beam", 1, MAX_BEAM, integer=True)
    p = sub.add_parser("caption", help="caption images (files or folders)")
    p.add_argument("paths", nargs="*", type=Path, help="image files or folders")
    p.add_argument("--samples", action="store_true", help="add the sample photos that ship with scikit-image")
    _output_flags(p, ".jsonl, .csv, .json (COCO results) or .html (a gallery to look at)")
    p.add_argument("--link-images", action="store_true",
                   help="the .html gallery links the photos (relative to the page) instead of "
                        "embedding thumbnails: for large folders")
    p.add_argument("--beam", type=beam, help="beam width (1: greedy; default: the model card's)")
    p.add_argument("--recursive", "-r", action="store_true", help="look into sub-folders")
    p.add_argument("--model", type=Path, action="append",
                   help="bundle folder (default: the bundled captioner); repeat it for an ensemble")
    _guide_flags(p)
    p.add_argument("--attention", type=Path, metavar="DIR",
                   help="write one PNG per image into DIR: where each word looked (attention models)")
    p.add_argument("--objects", action="store_true",
                   help="also find COCO objects with boxes and counts (NanoDet; slower: about 70 ms a photo)")
    p.add_argument("--attention-maps", action="store_true",
                   help="keep each word's attention weights in the rows (attention models); an "
                        ".html gallery shows them when the pointer is on a caption word")
    p.set_defaults(func=cmd_caption)

    p = sub.add_parser("train", help="train a captioner on a caption file and an image folder")
    p.add_argument("--data", type=Path, required=True, help="caption file (Flickr token file, CSV, COCO, Karpathy JSON)")
    p.add_argument("--images", type=Path, required=True, help="folder holding the images")
    p.add_argument("--out", type=Path, required=True, help="bundle folder to write (new, empty, or a bundle)")
    p.add_argument("--encoder", default=DEFAULT_ENCODER)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--overwrite", action="store_true", help="drop an interrupted run in --out and start again")
    p.add_argument("--lm-data", type=Path, action="append",
                   help="more caption text (repeat for several files): its words join the vocabulary, "
                        "and --lm-epochs pre-trains on it")
    p.add_argument("--save-language-model", type=Path, metavar="FILE.weights.h5",
                   help="keep the weights language-model pre-training leaves here (for "
                        "recipes/choose_everyday.py; by default they go with the checkpoints)")
    p.add_argument("--strategy", choices=STRATEGIES, default="default",
                   help="default: one device; mirrored: every GPU (or logical CPU device) of this "
                        "machine; multiworker: the machines named by TF_CONFIG (run the same command "
                        "on each). --batch-size is the global batch, spread over them")
    # The self-critical knobs belong to finetune; train would ignore them.
    plain = {k: v for k, v in vars(TrainConfig()).items() if not k.startswith("scst_")}
    _config_flags(p, SimpleNamespace(**plain), TRAIN_BOUNDS)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("finetune", help="fine-tune a trained captioner on CIDEr-D (self-critical training)")
    p.add_argument("--data", type=Path, required=True, help="caption file (its train split is used)")
    p.add_argument("--images", type=Path, required=True, help="folder holding the images")
    p.add_argument("--out", type=Path, required=True, help="bundle folder to write (new, empty, or a bundle)")
    p.add_argument("--model", type=Path, help="bundle to start from (default: the bundled captioner)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--overwrite", action="store_true", help="drop an interrupted run in --out and start again")
    tuning = TrainConfig(**{**vars(TrainConfig()), **FINETUNE_DEFAULTS})
    _config_flags(p, SimpleNamespace(**{n: getattr(tuning, n) for n in FINETUNE_FLAGS}), TRAIN_BOUNDS)
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("ensemble", help="save several captioners as one bundle that averages their words")
    p.add_argument("models", nargs="+", type=Path, help="bundle folders trained on the same vocabulary")
    p.add_argument("--data", type=Path, required=True, help="caption file: decoding chosen on its dev-select half")
    p.add_argument("--images", type=Path, required=True, help="folder holding the images")
    p.add_argument("--out", type=Path, required=True, help="bundle folder to write (new, empty, or a bundle)")
    p.set_defaults(func=cmd_ensemble)

    p = sub.add_parser("evaluate", help="BLEU-1..4 and CIDEr-D of a captioner on a data set split")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--images", type=Path, required=True)
    p.add_argument("--split", default="test", help="split to score (default test; '' for all)")
    p.add_argument("--model", type=Path, action="append",
                   help="bundle folder (default: the bundled captioner); repeat it for an ensemble")
    p.add_argument("--beam", type=beam, help="beam width (1: greedy; default: the model card's)")
    p.add_argument("--per-image", type=Path, help="also write per-image scores to this JSONL file")
    _guide_flags(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("export", help="write a captioner as a SavedModel (serving) or TFLite files")
    p.add_argument("out", type=Path, help="folder to create")
    p.add_argument("--format", choices=EXPORT_FORMATS, default="savedmodel",
                   help="savedmodel: image bytes to captions and tags in one graph, guided as "
                        "the card says; tflite: encoder, decoder step and vocabulary (default "
                        "savedmodel)")
    p.add_argument("--model", type=Path, help="bundle folder (default: the bundled captioner)")
    p.add_argument("--beam", type=beam, help="beam width (default: the model card's)")
    p.set_defaults(func=cmd_export)

    tag = TagOptions()
    seconds = _number("clip seconds", MIN_CLIP_SECONDS, MAX_CLIP_SECONDS)
    p = sub.add_parser("tag", help="tags and a caption for every clip of videos")
    p.add_argument("videos", nargs="+", type=Path, help="video files or folders")
    _output_flags(p, ".jsonl, .csv, .vtt or .srt (one video per .vtt/.srt file), or .html (a "
                     "timeline page to look at)")
    p.add_argument("--clip-seconds", type=seconds, default=tag.clip_seconds,
                   help=f"clip length, {MIN_CLIP_SECONDS:g} to {MAX_CLIP_SECONDS:g} (default {tag.clip_seconds})")
    p.add_argument("--overlap", type=_number("overlap", 0, MAX_CLIP_SECONDS), default=tag.overlap,
                   help="seconds shared by consecutive clips (less than --clip-seconds)")
    p.add_argument("--shots", action="store_true", help="cut clips at shot changes instead of fixed windows")
    p.add_argument("--fps", type=_number("fps", MIN_FPS, MAX_FPS),
                   help=f"frames sampled per second, {MIN_FPS:g} to {MAX_FPS:g} "
                        "(default: 1, or the rate a --model was trained at)")
    p.add_argument("--top-k", type=top_k, default=tag.top_k, help=f"tags per clip (default {tag.top_k})")
    p.add_argument("--clip-caption", choices=CLIP_CAPTIONS, default=tag.clip_caption,
                   help="caption a clip from all its frames (word distributions averaged) or from "
                        f"its most representative frame (default {tag.clip_caption}; image captioner only)")
    p.add_argument("--recursive", "-r", action="store_true", help="look into sub-folders")
    p.add_argument("--model", type=Path, help="clip-model bundle (default: tags from the bundled image models)")
    p.set_defaults(func=cmd_tag)

    p = sub.add_parser("train-concepts", help="train the concept tagger (people, places, actions) on captioned photos")
    p.add_argument("--data", type=Path, required=True, help="caption file with train and dev splits")
    p.add_argument("--images", type=Path, required=True, help="folder holding the images")
    p.add_argument("--out", type=Path, required=True, help="tagger file to write (.npz; its card beside it as .json)")
    p.add_argument("--encoder", default=DEFAULT_ENCODER, help="encoder whose spatial maps the tagger reads")
    p.add_argument("--epochs", type=_number("epochs", 1, 200, integer=True), default=10,
                   help="passes over the training photos (default 10)")
    p.set_defaults(func=cmd_train_concepts)

    p = sub.add_parser("calibrate-tags", help="fit the merged tags' calibration on dev-select halves")
    p.add_argument("--data", type=Path, action="append", required=True,
                   help="caption file (repeat for several data sets; one without splits is all dev)")
    p.add_argument("--images", type=Path, action="append", required=True,
                   help="the image folder of each --data, in the same order")
    p.add_argument("--out", type=Path, required=True, help="calibration file to write (.json)")
    p.add_argument("--encoder", default=DEFAULT_ENCODER, help="encoder whose tags are calibrated")
    p.set_defaults(func=cmd_calibrate_tags)

    p = sub.add_parser("train-video", help="train a clip model on labelled clips")
    p.add_argument("--labels", type=Path, required=True,
                   help="folder of <tag>/<clip> folders, a .csv 'clip,tags', or an MSVD/MLDS .json")
    p.add_argument("--videos", type=Path, help="folder of the clips named in a .csv/.json (default: its folder)")
    p.add_argument("--out", type=Path, required=True, help="bundle folder to write (new, empty, or a bundle)")
    p.add_argument("--fps", type=_number("fps", MIN_FPS, MAX_FPS), default=2.0,
                   help="frames sampled per second (default 2)")
    p.add_argument("--encoder", default=DEFAULT_ENCODER)
    _config_flags(p, ClipTrainConfig(), CLIP_TRAIN_BOUNDS)
    p.set_defaults(func=cmd_train_video)
    return parser


def _inside_tensorflow(frame) -> bool:
    """Whether TensorFlow is anywhere on the stack that a signal interrupted."""
    while frame is not None:
        if "tensorflow" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``captioner`` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's start-up chatter out
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")  # odd bytes in names never crash a print
    interrupted, leaving = [], []

    def on_ctrl_c(_signum, frame):
        interrupted.append(True)
        if leaving:  # main is answering already: a retry must not raise past it
            return
        if _inside_tensorflow(frame):
            # Raised inside TensorFlow's C++ callbacks it becomes another error, with a stack
            # printed by TensorFlow itself; try again a moment later, from our own code.
            signal.setitimer(signal.ITIMER_REAL, 0.02)
            return
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGINT, on_ctrl_c), signal.signal(signal.SIGALRM, on_ctrl_c)
    try:
        argv = sys.argv[1:] if argv is None else argv
        args = build_parser().parse_args(argv)
        args.argv = argv
        return args.func(args)
    except BaseException as exc:
        leaving.append(True)  # TensorFlow may have made a Ctrl-C its own error, a retry pending
        if interrupted:
            print("captioner: interrupted", file=sys.stderr)
            return 130
        if isinstance(exc, CaptionerError):
            print(f"captioner: error: {printable(str(exc))}", file=sys.stderr)
            return 2
        raise
    finally:  # the caller's Ctrl-C as it was (main also runs inside tests and notebooks)
        leaving.append(True)
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGALRM, before[1])


if __name__ == "__main__":
    sys.exit(main())
