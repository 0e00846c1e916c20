"""Tests for captioner.captioning.dataset: a caption file and an image folder as one split."""

from __future__ import annotations

import numpy as np
from conftest import write_photo

from captioner.captioning import dataset
from captioner.data.caption_sets import CaptionRecord
from captioner.encoders.features import FeatureResult


def test_images_named_outside_the_folder_are_problems_never_read(tmp_path, monkeypatch) -> None:
    images = tmp_path / "images"
    write_photo(images / "inside.jpg")
    secret = write_photo(tmp_path / "secret.jpg", seed=1)  # a real image, beside the folder
    records = [CaptionRecord(name, "a photo", "train")
               for name in ("inside.jpg", "../secret.jpg", str(secret))]
    read = []

    def features(files, encoder, kinds, progress):
        read.extend(files)
        return FeatureResult(list(files), {kinds[0]: np.zeros((len(files), 4), np.float32)})

    monkeypatch.setattr(dataset, "extract_features", features)
    split, problems = dataset.load_split(records, images, encoder=None, splits=("train",),
                                         progress=False)
    assert read == [images / "inside.jpg"] and split.names == ["inside.jpg"]
    assert len(problems) == 2
    for problem, name in zip(problems, ("../secret.jpg", str(secret))):
        assert problem.startswith(f"{name}: ") and "outside the image folder" in problem, problem
