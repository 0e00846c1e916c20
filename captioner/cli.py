"""The ``captioner`` command: a thin layer over captioner.api. Errors print, never trace."""

from __future__ import annotations

import argparse
import difflib
import json
import os
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
    else:
        for row in rows:
            if "error" in row:
                print(f"{row['image']}: ERROR {row['error']}")
            else:
                labels = ", ".join(f"{x['label']} ({x['score']:.3f})" for x in row["labels"])
                print(f"{row['image']}: {labels}")
    return 1 if rows and all("error" in r for r in rows) else 0


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
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``captioner`` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's start-up chatter out
    args = build_parser().parse_args(argv)
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
