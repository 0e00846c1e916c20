"""The ``captioner`` command: a thin layer over captioner.api. Errors print, never trace."""

from __future__ import annotations

import argparse
import difflib
import json
import os
import shlex
import sys
from pathlib import Path

from captioner.errors import CaptionerError


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
        for word in sys.argv[1:]:
            word = word.split("=")[0]
            if word in known or not (word.startswith("-") or word == sys.argv[1]):
                continue
            close = difflib.get_close_matches(word, known, n=1)
            if close:
                message += f" (did you mean {close[0]}?)"
                break
        super().error(message)


def _print_jsonl(rows: list[dict]) -> None:
    for row in rows:
        print(json.dumps(row, ensure_ascii=False))


def _inputs(args) -> list[Path]:
    """The paths given, plus the bundled sample photos with --samples."""
    paths = list(args.paths)
    if args.samples:
        from captioner.samples import sample_photos

        paths += sample_photos()
    if not paths:
        raise CaptionerError("no images given: name files or folders, or use --samples")
    return paths


def cmd_classify(args) -> int:
    from captioner import api

    rows = api.classify(_inputs(args), k=args.top_k, recursive=args.recursive, encoder=args.encoder)
    if args.json:
        _print_jsonl(rows)
        return _exit_code(rows)
    return _print_rows(rows, "image", lambda r: ": " + ", ".join(f"{x['label']} ({x['score']:.3f})" for x in r["labels"]))


def _exit_code(rows: list[dict]) -> int:
    """1 when every file failed, else 0."""
    return 1 if rows and all("error" in r for r in rows) else 0


def _print_rows(rows: list[dict], key: str, describe) -> int:
    """One line per row, ERROR and the reason for a file that failed; returns the exit code."""
    for row in rows:
        print(f"{row[key]}: ERROR {row['error']}" if "error" in row else f"{row[key]}{describe(row)}")
    return _exit_code(rows)


def cmd_caption(args) -> int:
    from captioner.api import Captioner

    captioner = Captioner.load(args.model) if args.model else Captioner.from_pretrained()
    rows = captioner.caption(_inputs(args), beam=args.beam, recursive=args.recursive, output=args.output)
    if args.output is None:
        return _print_rows(rows, "image", lambda r: f": {r['caption']}")
    bad = sum("error" in r for r in rows)
    print(f"{len(rows)} images ({bad} unreadable) in {args.output}")
    return _exit_code(rows)


def cmd_tag(args) -> int:
    from captioner.video_tagger import TagOptions, VideoTagger

    if args.overlap >= args.clip_seconds:
        raise CaptionerError(f"--overlap ({args.overlap}) must be shorter than --clip-seconds ({args.clip_seconds})")
    if (args.fps is not None and args.fps <= 0) or args.top_k < 1:
        raise CaptionerError("--fps must be positive and --top-k at least 1")
    tagger = VideoTagger.load(args.model) if args.model else VideoTagger.default()
    options = TagOptions(clip_seconds=args.clip_seconds, overlap=args.overlap, fps=args.fps,
                         top_k=args.top_k, shots=args.shots)
    rows = tagger.tag(args.videos, options, recursive=args.recursive, output=args.output)
    if args.output is None:
        return _print_rows(rows, "video", lambda r: f" [{r['start']:.1f}-{r['end']:.1f}s] {r['caption']} | "
                           + ", ".join(f"{t['tag']} ({t['score']:.2f})" for t in r["tags"]))
    bad = sum("error" in r for r in rows)
    print(f"{len(rows) - bad} clips, {bad} unreadable videos, in {args.output}")
    return _exit_code(rows)


def cmd_train_video(args) -> int:
    from dataclasses import fields

    from captioner.train_clips import ClipTrainConfig
    from captioner.video_tagger import VideoTagger

    overrides = {f.name: getattr(args, f.name) for f in fields(ClipTrainConfig)
                 if getattr(args, f.name, None) is not None}
    VideoTagger.train(args.labels, args.out, videos=args.videos, fps=args.fps, encoder=args.encoder,
                      config=ClipTrainConfig(**overrides), command=shlex.join(["captioner", *args.argv]))
    print(f"saved {args.out}")
    return 0


def _config_flags(parser: argparse.ArgumentParser, config) -> None:
    """One flag per field of a config dataclass, typed by its default."""
    for name, value in vars(config).items():
        flag = "--" + name.replace("_", "-")
        if name == "monitor":
            parser.add_argument(flag, choices=["loss", "bleu4", "cider"], help=f"early stopping on (default {value})")
        elif name == "pooling":
            parser.add_argument(flag, choices=["lstm", "mean"], help=f"default {value}")
        else:
            parser.add_argument(flag, type=type(value), help=f"default {value}")


def cmd_train(args) -> int:
    from dataclasses import fields

    from captioner.api import Captioner
    from captioner.train import TrainConfig

    overrides = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name, None) is not None}
    captioner = Captioner.train(args.data, args.images, args.out, encoder=args.encoder,
                                config=TrainConfig(**overrides), resume=args.resume, lm_data=args.lm_data,
                                command=shlex.join(["captioner", *args.argv]))
    print(f"saved {args.out}")
    for name, scores in captioner.card["dev_scores"].items():
        print(f"dev {name}: " + _score_line(scores))
    return 0


def _score_line(scores: dict) -> str:
    return "  ".join(f"{k} {scores[k]:.2f}" for k in ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "CIDEr-D"))


def cmd_evaluate(args) -> int:
    from captioner.api import Captioner

    captioner = Captioner.load(args.model) if args.model else Captioner.from_pretrained()
    scores = captioner.evaluate(args.data, args.images, split=args.split or None, beam=args.beam,
                                per_image=args.per_image is not None)
    for problem in scores["problems"][:10]:
        print(f"skipped {problem}", file=sys.stderr)
    print(f"{scores['images']} images, beam {args.beam}: " + _score_line(scores))
    if args.per_image is not None:
        from captioner.writers import write_jsonl

        rows = [{"image": name, **row} for name, row in scores["per_image"].items()]
        write_jsonl(args.per_image, rows)
        print(f"per-image results in {args.per_image}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = _Parser(prog="captioner", description="Describe pictures and videos in words.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("classify", help="ImageNet labels for images (checks the encoder's weights)")
    p.add_argument("paths", nargs="*", type=Path, help="image files or folders")
    p.add_argument("--samples", action="store_true", help="add the sample photos that ship with scikit-image")
    p.add_argument("--top-k", type=int, default=5, help="labels per image (default 5)")
    p.add_argument("--recursive", "-r", action="store_true", help="look into sub-folders")
    p.add_argument("--encoder", default="efficientnet_lite0", help="encoder name")
    p.add_argument("--json", action="store_true", help="print JSON lines instead of text")
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("caption", help="caption images (files or folders)")
    p.add_argument("paths", nargs="*", type=Path, help="image files or folders")
    p.add_argument("--samples", action="store_true", help="add the sample photos that ship with scikit-image")
    p.add_argument("-o", "--output", type=Path, help="write .jsonl, .csv or .json (COCO results); resumable")
    p.add_argument("--beam", type=int, default=3, help="beam width (1: greedy; default 3)")
    p.add_argument("--recursive", "-r", action="store_true", help="look into sub-folders")
    p.add_argument("--model", type=Path, help="bundle folder (default: the bundled captioner)")
    p.set_defaults(func=cmd_caption)

    from captioner.train import TrainConfig

    defaults = TrainConfig()
    p = sub.add_parser("train", help="train a captioner on a caption file and an image folder")
    p.add_argument("--data", type=Path, required=True, help="caption file (Flickr token file, CSV, COCO, Karpathy JSON)")
    p.add_argument("--images", type=Path, required=True, help="folder holding the images")
    p.add_argument("--out", type=Path, required=True, help="bundle folder to write")
    p.add_argument("--encoder", default="efficientnet_lite0")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--lm-data", type=Path, help="caption text for language-model pre-training (with --lm-epochs)")
    _config_flags(p, defaults)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="BLEU-1..4 and CIDEr-D of a captioner on a data set split")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--images", type=Path, required=True)
    p.add_argument("--split", default="test", help="split to score (default test; '' for all)")
    p.add_argument("--model", type=Path, help="bundle folder (default: the bundled captioner)")
    p.add_argument("--beam", type=int, default=1, help="beam width (1: greedy)")
    p.add_argument("--per-image", type=Path, help="also write per-image scores to this JSONL file")
    p.set_defaults(func=cmd_evaluate)

    from captioner.train_clips import ClipTrainConfig
    from captioner.video_tagger import TagOptions

    tag = TagOptions()
    p = sub.add_parser("tag", help="tags and a caption for every clip of videos")
    p.add_argument("videos", nargs="+", type=Path, help="video files or folders")
    p.add_argument("-o", "--output", type=Path, help="write .jsonl, .csv, .vtt or .srt; resumable")
    p.add_argument("--clip-seconds", type=float, default=tag.clip_seconds, help=f"clip length (default {tag.clip_seconds})")
    p.add_argument("--overlap", type=float, default=tag.overlap, help="seconds shared by consecutive clips")
    p.add_argument("--shots", action="store_true", help="cut clips at shot changes instead of fixed windows")
    p.add_argument("--fps", type=float, help="frames sampled per second (default: 1, or the rate a --model was trained at)")
    p.add_argument("--top-k", type=int, default=tag.top_k, help=f"tags per clip (default {tag.top_k})")
    p.add_argument("--recursive", "-r", action="store_true", help="look into sub-folders")
    p.add_argument("--model", type=Path, help="clip-model bundle (default: tags from the bundled image models)")
    p.set_defaults(func=cmd_tag)

    p = sub.add_parser("train-video", help="train a clip model on labelled clips")
    p.add_argument("--labels", type=Path, required=True,
                   help="folder of <tag>/<clip> folders, a .csv 'clip,tags', or an MSVD/MLDS .json")
    p.add_argument("--videos", type=Path, help="folder of the clips named in a .csv/.json (default: its folder)")
    p.add_argument("--out", type=Path, required=True, help="bundle folder to write")
    p.add_argument("--fps", type=float, default=2.0, help="frames sampled per second (default 2)")
    p.add_argument("--encoder", default="efficientnet_lite0")
    _config_flags(p, ClipTrainConfig())
    p.set_defaults(func=cmd_train_video)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``captioner`` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's start-up chatter out
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.func(args)
    except CaptionerError as exc:
        print(f"captioner: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("captioner: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
