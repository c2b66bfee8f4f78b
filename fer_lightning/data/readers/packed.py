"""The packed form of a data set: one compressed .npz of uint8 faces, labels and splits, written
by ``python -m fer_lightning.pack`` and read back exactly.

Each face is stored as the differences between neighbouring pixels of a row (mod 256), which
deflate packs a sixth smaller than the pixels themselves (FER2013: 55.8 MiB instead of 67.5); a
cumulative sum restores them bit for bit.

It is data: arrays only, loaded with ``allow_pickle=False``, each checked for shape, type and range,
and a wrong one is named in one line.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from fer_lightning.classes import IMAGE_SIZE, NUM_CLASSES
from fer_lightning.data.readers.table import NO_LABEL, SPLITS, ParsedRows
from fer_lightning.errors import DataFormatError
from fer_lightning.files import atomic_write

MARKER = "fer-lightning packed faces, version 1"
SUFFIX = ".npz"
# name -> (dtype, shape after the row axis)
ARRAYS = {
    "images_dx": (np.uint8, (IMAGE_SIZE, IMAGE_SIZE)),
    "labels": (np.int64, ()),
    "splits": (np.int8, ()),
    "split_ids": (np.int64, ()),
    "file_ids": (np.int64, ()),
}


def is_packed(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == SUFFIX


def has_marker(path: Path) -> bool:
    """Whether ``path`` is a packed data set of this project, by its marker alone (no faces read)."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            return "marker" in stored.files and str(stored["marker"]) == MARKER
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return False


def write_packed(path: str | Path, rows: ParsedRows) -> None:
    """Every array of ``rows``, compressed, with the marker that tells the file apart; atomic."""
    images = np.asarray(rows.images, dtype=np.uint8)
    differences = np.diff(images, axis=2, prepend=np.zeros((*images.shape[:2], 1), np.uint8))
    arrays = {name: np.ascontiguousarray(getattr(rows, name) if name != "images_dx" else differences, dtype=dtype)
              for name, (dtype, _) in ARRAYS.items()}
    with atomic_write(path) as handle:
        np.savez_compressed(handle, marker=np.array(MARKER), **arrays)


def read_packed(path: Path) -> ParsedRows:
    source = str(path)
    try:
        with np.load(path, allow_pickle=False) as stored:
            if "marker" not in stored.files or str(stored["marker"]) != MARKER:
                raise DataFormatError(f"{source}: not a packed data set of this project (no marker; "
                                      "make one with python -m fer_lightning.pack)")
            missing = [name for name in ARRAYS if name not in stored.files]
            if missing:
                raise DataFormatError(f"{source}: a packed data set without {', '.join(missing)}")
            arrays = {name: stored[name] for name in ARRAYS}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise DataFormatError(f"{source}: cannot be read as a packed data set ({error})") from None
    count = len(arrays["images_dx"])
    for name, (dtype, shape) in ARRAYS.items():
        array = arrays[name]
        if array.dtype != dtype or array.shape != (count, *shape):
            raise DataFormatError(f"{source}: array {name} is {array.dtype}{list(array.shape)}, "
                                  f"expected {np.dtype(dtype)}{[count, *shape]}")
    labels, splits = arrays["labels"], arrays["splits"]
    bad = np.flatnonzero((labels != NO_LABEL) & ((labels < 0) | (labels >= NUM_CLASSES)))
    if bad.size:
        raise DataFormatError(f"{source}: row {int(bad[0])} has label {int(labels[bad[0]])}, outside 0..{NUM_CLASSES - 1}")
    bad = np.flatnonzero((splits < 0) | (splits >= len(SPLITS)))
    if bad.size:
        raise DataFormatError(f"{source}: row {int(bad[0])} has split {int(splits[bad[0]])}, outside 0..{len(SPLITS) - 1}")
    images = np.cumsum(arrays.pop("images_dx"), axis=2, dtype=np.uint8)  # wraps mod 256, as stored
    return ParsedRows(images=images, **arrays, names=None, source=source)
