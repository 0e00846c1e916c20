"""The object detector: NanoDet-g finds the 80 COCO object classes in a photo, with boxes.

The network runs on LiteRT (``nanodet.tflite`` beside this file; where it comes from is in
``nanodet.md``); what surrounds it is numpy: the letterboxed, normalised 416x416 input, the
decoding of the three heads (strides 8, 16 and 32) and per-class non-maximum suppression.

Each head gives, per grid cell, 80 class scores (already through a sigmoid) and 44 box logits:
for each side of the box (left, top, right, bottom) a distribution over 0..10 cell widths of
distance from the cell's centre (NanoDet's generalised focal loss). The distance is that
distribution's mean, so a box edge can fall between the bins.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from captioner.errors import CaptionerError, ImageError

MODEL = Path(__file__).with_name("nanodet.tflite")
SIZE = 416
STRIDES = (8, 16, 32)
REG_MAX = 10  # each side's distribution has REG_MAX + 1 bins: 4 x 11 = 44 box outputs per cell
# NanoDet's training config: images in BGR order, these per-channel means and deviations.
MEAN_BGR = np.array([103.53, 116.28, 123.675], np.float32)
STD_BGR = np.array([57.375, 57.12, 58.395], np.float32)
IOU = 0.5
MAX_DETECTIONS = 20
# At most this many (cell, class) candidates per stride are decoded, and as many in all go into
# suppression, best first (NanoDet's own post-processing keeps 1,000 per stride): a low
# min_score would otherwise pass hundreds of thousands.
CANDIDATES = 1000

# NanoDet's class order (COCO's 80 object categories), written as caption words.
COCO_LABELS = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich",
    "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)
OUTPUTS = tuple(f"{kind}_{stride}" for stride in STRIDES for kind in ("scores", "boxes"))


class ObjectDetector:
    """NanoDet-g on LiteRT: ``detect`` returns each image's labelled boxes, best first."""

    def __init__(self, path: Path = MODEL, num_threads: int | None = None):
        path = Path(path)
        if not path.is_file():
            raise CaptionerError(f"{path}: the object detector's model file is missing "
                                 "(reinstall captioner, or see captioner/tagging/nanodet.md)")
        # Imported here, not at the top: the opener's module also holds the Keras converter,
        # and importing this module should not load TensorFlow.
        from captioner.encoders.tflite_runner import open_interpreter

        try:
            interpreter = open_interpreter(path, num_threads)
            self._run = interpreter.get_signature_runner()
            outputs = set(self._run.get_output_details())
        except Exception as exc:  # noqa: BLE001 - the runtimes raise ValueError, RuntimeError...
            raise CaptionerError(f"{path}: not a usable object detector model "
                                 f"({type(exc).__name__}: {exc}); reinstall captioner") from None
        if outputs != set(OUTPUTS):
            raise CaptionerError(f"{path}: not the NanoDet model this code decodes (outputs "
                                 f"{sorted(outputs)}, expected {sorted(OUTPUTS)})")

    def detect(self, images: list[np.ndarray], min_score: float = 0.35) -> list[list[dict]]:
        """Per image (uint8 RGB, any size): ``{"label", "score", "box": [x0, y0, x1, y1]}``
        dicts in the image's pixels, best score first, at most ``MAX_DETECTIONS``."""
        return [self._detect_one(image, min_score) for image in images]

    def _detect_one(self, image: np.ndarray, min_score: float) -> list[dict]:
        """The detections of one image."""
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 \
                or image.dtype != np.uint8 or min(image.shape[:2]) == 0:
            shape = getattr(image, "shape", None)
            raise ImageError(f"the object detector takes (H, W, 3) uint8 RGB arrays, got "
                             f"{type(image).__name__} {shape} {getattr(image, 'dtype', '')} "
                             "(captioner.data.images.as_rgb_array converts other arrays)")
        batch, scale, offset = letterbox(image)
        boxes, scores, classes = decode(self._run(image=batch), min_score)
        height, width = image.shape[:2]
        # Back from the letterboxed 416x416 to the photo's own pixels, cut to the photo: a box
        # that lay only on the black border has no pixel left, and goes.
        boxes = np.clip((boxes - np.tile(offset, 2)) / scale, 0, [width, height, width, height])
        real = np.nonzero((boxes[:, 2] - boxes[:, 0] >= 1) & (boxes[:, 3] - boxes[:, 1] >= 1))[0]
        real = real[np.argsort(-scores[real], kind="stable")[:CANDIDATES]]
        keep = real[nms(boxes[real], scores[real], classes[real], IOU, MAX_DETECTIONS)]
        return [{"label": COCO_LABELS[c], "score": round(float(s), 4),
                 "box": [round(float(v), 1) for v in box]}
                for box, s, c in zip(boxes[keep], scores[keep], classes[keep])]


def letterbox(image: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """The model's input for ``image``: scaled to fit 416x416 with its aspect ratio kept,
    centred on black, BGR, normalised; plus the scale and the (x, y) offset of the photo."""
    height, width = image.shape[:2]
    scale = min(SIZE / width, SIZE / height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    resized = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.BILINEAR))
    # Black borders, as NanoDet's own resize leaves them (before normalising); it was trained
    # on such letterboxed photos, so stretching to a square would distort what it knows.
    canvas = np.zeros((SIZE, SIZE, 3), np.uint8)
    x0, y0 = (SIZE - new_w) // 2, (SIZE - new_h) // 2
    canvas[y0:y0 + new_h, x0:x0 + new_w] = resized
    batch = (canvas[None, ..., ::-1].astype(np.float32) - MEAN_BGR) / STD_BGR
    return batch, scale, np.array([x0, y0], np.float32)


def decode(heads: dict[str, np.ndarray],
           min_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (cell, class) scoring at least ``min_score``: its box in the 416x416 input, its
    score and its class index."""
    all_boxes, all_scores, all_classes = [], [], []
    bins = np.arange(REG_MAX + 1, dtype=np.float32)
    for stride in STRIDES:
        scores = heads[f"scores_{stride}"][0]
        cells, classes = np.nonzero(scores >= min_score)
        if len(cells) > CANDIDATES:
            best = np.argpartition(-scores[cells, classes], CANDIDATES)[:CANDIDATES]
            cells, classes = cells[best], classes[best]
        if not len(cells):
            continue
        # Only the candidates' boxes are decoded: at the default floor, a few dozen cells.
        logits = heads[f"boxes_{stride}"][0][cells].reshape(-1, 4, REG_MAX + 1)
        logits = logits - logits.max(axis=-1, keepdims=True)  # a stable softmax
        weights = np.exp(logits)
        # (n, 4): the distances from the cell's centre to the left, top, right and bottom edges.
        distances = (weights @ bins) / weights.sum(axis=-1) * stride
        side = SIZE // stride
        centres = (np.stack([cells % side, cells // side], axis=-1) + 0.5) * stride
        boxes = np.concatenate([centres - distances[:, :2], centres + distances[:, 2:]], axis=-1)
        all_boxes.append(boxes)
        all_scores.append(scores[cells, classes])
        all_classes.append(classes)
    if not all_boxes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
    return np.concatenate(all_boxes), np.concatenate(all_scores), np.concatenate(all_classes)


def iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Intersection over union of one (x0, y0, x1, y1) box with each of ``others``."""
    width = np.clip(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
    inter = width * height
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, threshold: float,
        limit: int | None = None) -> np.ndarray:
    """Indices of the boxes kept (at most ``limit``), best score first: a box is dropped when a
    better-scoring box of the same class overlaps it by more than ``threshold`` IoU."""
    order = np.argsort(-scores, kind="stable")
    kept = []
    while len(order) and (limit is None or len(kept) < limit):
        best, rest = order[0], order[1:]
        kept.append(best)
        same = classes[rest] == classes[best]
        overlap = np.zeros(len(rest), bool)
        overlap[same] = iou(boxes[best], boxes[rest[same]]) > threshold
        order = rest[~overlap]
    return np.array(kept, np.int64)


def counts(detections: list[dict]) -> dict[str, int]:
    """How many of each label one image's detections hold, most frequent first."""
    return dict(Counter(d["label"] for d in detections).most_common())


@lru_cache(maxsize=1)
def default_detector() -> ObjectDetector:
    """The detector shipped with the package, loaded once per process."""
    return ObjectDetector(MODEL)
