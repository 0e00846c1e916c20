"""A caption decoder's weights as plain named arrays, read without TensorFlow or Keras.

A ``.keras`` file is a zip whose ``model.weights.h5`` holds every weight as an HDF5 dataset,
named by Keras' own layout (``cell/vars/0``, ``layers/dense_6/vars/1``...). When a bundle is
saved, ``write_index`` matches each array the numpy step needs (``decoder_arrays``) with the
dataset holding exactly those numbers and writes the names down beside the model
(``model.step.json``). ``read_step`` then builds the numpy step from the zip with h5py alone,
so captioning never loads Keras, and the bundle carries its weights once.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from captioner.captioning.numpy_step import decoder_arrays, step_from_arrays
from captioner.errors import BundleError

WEIGHTS_MEMBER = "model.weights.h5"  # where Keras 3 keeps the weights inside a .keras zip
FORMAT = 1


def index_path(model_path: Path) -> Path:
    """Where the index of this model file lives: ``model.keras`` -> ``model.step.json``."""
    return Path(model_path).with_suffix(".step.json")


def _datasets(model_path: Path) -> dict[str, np.ndarray]:
    import h5py

    with zipfile.ZipFile(model_path) as archive:
        data = archive.read(WEIGHTS_MEMBER)
    found: dict[str, np.ndarray] = {}

    def keep(name, item):
        if isinstance(item, h5py.Dataset):
            found[name] = item[()]

    with h5py.File(io.BytesIO(data), "r") as weights:
        weights.visititems(keep)
    return found


def write_index(model_path: Path, decoder) -> bool:
    """Write the index of the caption decoder saved at ``model_path``; False (nothing written)
    when some array has no dataset holding exactly its numbers."""
    info, arrays = decoder_arrays(decoder)
    datasets = _datasets(model_path)
    names = {}
    for name, array in arrays.items():
        # Equal numbers are interchangeable, so the first dataset holding them will do.
        match = next((key for key, value in datasets.items()
                      if value.shape == array.shape and np.array_equal(value, array)), None)
        if match is None:
            return False
        names[name] = match
    text = json.dumps({"format": FORMAT, **info, "arrays": names}, indent=1)
    index_path(model_path).write_text(text + "\n", encoding="utf-8")
    return True


def read_step(model_path: Path):
    """The numpy step of the decoder saved at ``model_path``, or None without an index."""
    index = index_path(model_path)
    if not index.is_file():
        return None
    try:
        info = json.loads(index.read_text(encoding="utf-8"))
        if info.get("format") != FORMAT:
            return None  # written by another version: Keras reads the model instead
        datasets = _datasets(model_path)
        arrays = {name: np.asarray(datasets[key], dtype="float32") for name, key in info["arrays"].items()}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise BundleError(f"{model_path}: cannot read its weights ({exc}); copy the bundle again") from None
    return step_from_arrays(info, arrays)
