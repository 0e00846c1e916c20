"""``python -m captioner.beam``: caption a photo library with Apache Beam, on any runner.

Images are found and read through Beam's file systems (local paths, and ``gs://`` or ``s3://``
where their file systems are installed), captioned by ``RunInference`` with the public
``Captioner`` (loaded once per worker, a batch of images at a time) and written as sharded
JSONL holding the rows of ``captioner caption -o x.jsonl``. The files are those the CLI would
take: of a folder (``photos/``) or a glob, the images (by suffix, see
``captioner.data.paths.listed``); a file named on its own, whatever it is. A file that cannot
be read or decoded becomes an ``{"image", "error"}`` row, as in the CLI. Every option this
module does not know goes to Beam (``--runner``, ``--project``...): the same command runs on the
DirectRunner, Dataflow, Flink or Spark.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from captioner.checks import MAX_BEAM, number_in
from captioner.data.images import EncodedImage, check_file_size
from captioner.data.paths import IMAGE_EXTENSIONS, display_path, listed
from captioner.errors import CaptionerError, ImageError
from captioner.files import printable
from captioner.results.writers import json_line

try:
    import apache_beam as beam
    from apache_beam.io import fileio
    from apache_beam.io.fileio import EmptyMatchTreatment
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.ml.inference.base import ModelHandler, RunInference
    from apache_beam.options.pipeline_options import PipelineOptions
except ImportError as exc:  # the extra is not installed: say how to get it
    message = f"Apache Beam is not installed ({exc}); run: pip install 'captioner[beam]'"
    if __name__ == "__main__":
        print(f"captioner.beam: error: {message}", file=sys.stderr)
        sys.exit(2)
    raise CaptionerError(message) from None

# Images per RunInference batch: two encoder calls of 32 (the fastest size measured), and
# enough images for the beam searches to share their steps; a few MB of JPEG bytes held.
BATCH_SIZE = 64
UNREADABLE = "unreadable"


class CaptionerModelHandler(ModelHandler[EncodedImage, dict, Any]):
    """RunInference's captioner: a bundle (default: the bundled one) loaded once per worker,
    batches of encoded images in, the rows of ``captioner caption`` out."""

    def __init__(self, model: str | os.PathLike | None = None, beam_width: int | None = None,
                 batch_size: int = BATCH_SIZE):
        super().__init__(min_batch_size=1, max_batch_size=batch_size)
        self.model = None if model is None else str(model)  # plain text: pickled to workers
        self.beam_width = beam_width

    def load_model(self):
        """The captioner, loaded in the worker (TensorFlow is never imported by the launcher)."""
        from captioner import Captioner

        return Captioner.load(Path(self.model)) if self.model else Captioner.from_pretrained()

    def run_inference(self, batch: Sequence[EncodedImage], model,
                      inference_args: dict | None = None) -> Iterable[dict]:
        """One row per image, decoded exactly as the CLI decodes the file."""
        return model.caption_items(list(batch), beam=self.beam_width, progress=False)

    def get_num_bytes(self, batch: Sequence[EncodedImage]) -> int:
        """The images' bytes (Beam's default pickles the whole batch to measure it)."""
        return sum(len(image.data) for image in batch)


class ReadImage(beam.DoFn):
    """A matched file as an ``EncodedImage`` named as the CLI names it, or, when it cannot be
    read, an error row on the ``unreadable`` output."""

    def process(self, file: fileio.ReadableFile):
        name = display_path(file.metadata.path)
        try:
            check_file_size(name, file.metadata.size_in_bytes)  # before the file is read whole
        except ImageError as exc:
            reason = str(exc).removeprefix(f"{name}: ")
            yield beam.pvalue.TaggedOutput(UNREADABLE, {"image": name, "error": reason})
            return
        try:
            yield EncodedImage(name, file.read())
        except Exception as exc:  # noqa: BLE001 - each file system raises its own types
            reason = f"cannot read file ({getattr(exc, 'strerror', None) or exc})"
            yield beam.pvalue.TaggedOutput(UNREADABLE, {"image": name, "error": reason})


def caption_files(pipeline: beam.Pipeline, pattern: str, output: str, model: str | None = None,
                  beam_width: int | None = None) -> None:
    """Add the steps: images matching ``pattern`` -> captions -> ``output``-SSSSS-of-NNNNN.jsonl."""
    files = (pipeline
             | "Match" >> fileio.MatchFiles(pattern, empty_match_treatment=EmptyMatchTreatment.DISALLOW)
             | "Images" >> beam.Filter(_taken, pattern)
             # Bytes as stored: a photo named .gz must not be inflated on the way.
             | "Open" >> fileio.ReadMatches(compression=CompressionTypes.UNCOMPRESSED)
             | "Read" >> beam.ParDo(ReadImage()).with_outputs(UNREADABLE, main="images"))
    captioned = files.images | "Caption" >> RunInference(CaptionerModelHandler(model, beam_width))
    _ = ((captioned, files[UNREADABLE])
         | "Rows" >> beam.Flatten()
         | "JSON" >> beam.Map(lambda row: json_line(row).rstrip("\n"))
         | "Write" >> beam.io.WriteToText(output, file_name_suffix=".jsonl"))


def _taken(file: Any, pattern: str) -> bool:
    """Whether a matched file is captioned: the CLI's rule (an image of a folder or glob, or the
    one file the pattern names)."""
    return file.path == pattern or listed(file.path, IMAGE_EXTENSIONS)


def _beam_width(text: str) -> int:
    try:
        return number_in("beam", text, 1, MAX_BEAM, integer=True)
    except CaptionerError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """This module's options; the rest of the command line is Beam's."""
    parser = argparse.ArgumentParser(
        prog="python -m captioner.beam",
        description="Caption images with Apache Beam; other options (--runner ...) go to Beam.")
    parser.add_argument("--input", required=True,
                        help="the images: a folder ('photos/': its images, as the CLI takes them), "
                             "a glob ('photos/*.jpg', 'gs://bucket/photos/**') or one file")
    parser.add_argument("--output", required=True,
                        help="prefix of the JSONL shards: out/captions -> out/captions-00000-of-00004.jsonl")
    parser.add_argument("--model", help="bundle folder, at this path on every worker too "
                                        "(default: the bundled captioner)")
    parser.add_argument("--beam", type=_beam_width, help="beam width (1: greedy; default: the model card's)")
    return parser


def _local(pattern: str) -> str:
    """A local path made absolute, so rows name files as the CLI does (a final slash kept: Beam
    matches ``folder/`` as every file in it, of which ``_taken`` keeps the images); URLs as
    given."""
    if FileSystems.get_scheme(pattern):
        return pattern
    absolute = os.path.abspath(os.path.expanduser(pattern))
    return absolute + os.sep if pattern.endswith(("/", os.sep)) else absolute


def _check_input(pattern: str, given: str) -> None:
    """A local input that matches no file is a mistake answered here in one line, not a job
    that writes nothing (remote ones are matched by the workers, and fail there)."""
    if FileSystems.get_scheme(pattern):
        return
    if os.path.isdir(pattern) and not pattern.endswith(os.sep):
        raise CaptionerError(f"{given} is a folder: give its images as a glob, e.g. "
                             f"'{os.path.join(given, '*.jpg')}', or '{os.path.join(given, '')}' "
                             "for every image in it")
    matched = FileSystems.match([pattern])[0].metadata_list
    if not matched:
        raise CaptionerError(f"no file matches {given}")
    if not any(_taken(file, pattern) for file in matched):
        raise CaptionerError(f"no image file matches {given} (images end in "
                             f"{', '.join(IMAGE_EXTENSIONS)})")


def _misspelt(parser: argparse.ArgumentParser, beam_args: list[str]) -> None:
    """Beam ignores the options it does not know: one close to ours is a typo, not Beam's."""
    ours = [o for action in parser._actions for o in action.option_strings]
    for word in beam_args:
        close = difflib.get_close_matches(word.split("=")[0], ours, n=1, cutoff=0.75)
        if word.startswith("--") and close:
            parser.error(f"unrecognized argument: {word} (did you mean {close[0]}?)")


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the pipeline to the end; 0, or 2 on a user's mistake."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's start-up chatter out
    parser = build_parser()
    args, beam_args = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    _misspelt(parser, beam_args)
    try:
        if args.model and not Path(args.model).is_dir():  # fail here, not on every worker
            raise CaptionerError(f"{args.model}: no such bundle folder")
        pattern = _local(args.input)
        _check_input(pattern, args.input)
        with beam.Pipeline(options=PipelineOptions(beam_args)) as pipeline:
            model = os.path.abspath(args.model) if args.model else None
            caption_files(pipeline, pattern, _local(args.output), model, args.beam)
    except CaptionerError as exc:
        print(f"captioner.beam: error: {printable(str(exc))}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    # Run as captioner.beam, not __main__, so the classes pickled to workers have a module
    # workers can import.
    from captioner.beam import main as _main

    sys.exit(_main())
