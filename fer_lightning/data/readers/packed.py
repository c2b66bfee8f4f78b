"""The packed form of a data set: one compressed .npz of uint8 faces, labels and splits, written
by ``python -m fer_lightning.pack`` and read back exactly.

Two encodings of the faces, both restored bit for bit:
- ``rowdiff`` (the default): the differences between neighbouring pixels of a row (mod 256), which
  deflate packs a sixth smaller than the pixels themselves (FER2013: 55.8 MiB instead of 67.5); a
  cumulative sum restores them, so reading is fastest (0.8 s for FER2013).
- ``webp``: each face as a lossless WebP (OpenCV), 12% smaller again (FER2013: 48.9 MiB), read in
  1.4 s; for moving the data where every megabyte counts.

It is data: arrays only, loaded with ``allow_pickle=False``, each checked for shape, type and range,
and a wrong one is named in one line.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from fer_lightning.classes import IMAGE_SIZE, NUM_CLASSES
from fer_lightning.config.choices import PACK_ENCODINGS, allowed
from fer_lightning.data.readers.table import NO_LABEL, SPLITS, ParsedRows
from fer_lightning.errors import ConfigError, DataFormatError
from fer_lightning.files import atomic_write

MARKER = "fer-lightning packed faces, version 1"
SUFFIX = ".npz"
# name -> (dtype, shape after the row axis); the faces are in one of FACE_ARRAYS.
ARRAYS = {
    "labels": (np.int64, ()),
    "splits": (np.int8, ()),
    "split_ids": (np.int64, ()),
    "file_ids": (np.int64, ()),
}
FACE_ARRAYS = {"rowdiff": ("images_dx",), "webp": ("webp_bytes", "webp_ends")}


def is_packed(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == SUFFIX


def has_marker(path: Path) -> bool:
    """Whether ``path`` is a packed data set of this project, by its marker alone (no faces read)."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            return "marker" in stored.files and str(stored["marker"]) == MARKER
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return False


def encode_faces(images: np.ndarray, encoding: str) -> dict[str, np.ndarray]:
    if encoding == "rowdiff":
        return {"images_dx": np.diff(images, axis=2, prepend=np.zeros((*images.shape[:2], 1), np.uint8))}
    import cv2

    encoded = [cv2.imencode(".webp", face, [cv2.IMWRITE_WEBP_QUALITY, 101])[1].ravel() for face in images]
    ends = np.cumsum([len(item) for item in encoded], dtype=np.int64)
    return {"webp_bytes": np.concatenate(encoded) if encoded else np.zeros(0, np.uint8), "webp_ends": ends}


def decode_faces(arrays: dict[str, np.ndarray], source: str) -> np.ndarray:
    """(N, 48, 48) uint8 faces from whichever encoding ``arrays`` holds, each array checked first."""
    if "images_dx" in arrays:
        differences = arrays["images_dx"]
        if differences.dtype != np.uint8 or differences.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise DataFormatError(f"{source}: array images_dx is {differences.dtype}{list(differences.shape)}, "
                                  f"expected uint8[N, {IMAGE_SIZE}, {IMAGE_SIZE}]")
        return np.cumsum(differences, axis=2, dtype=np.uint8)  # wraps mod 256, as stored
    import cv2

    data, ends = arrays["webp_bytes"], arrays["webp_ends"]
    if data.dtype != np.uint8 or data.ndim != 1 or ends.dtype != np.int64 or ends.ndim != 1 \
            or (len(ends) and (ends[-1] != len(data) or np.any(np.diff(ends, prepend=0) <= 0))):
        raise DataFormatError(f"{source}: its WebP faces are not a byte string cut at rising ends")
    images = np.empty((len(ends), IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    start = 0
    for row, end in enumerate(ends.tolist()):
        face = cv2.imdecode(data[start:end], cv2.IMREAD_GRAYSCALE)
        if face is None or face.shape != (IMAGE_SIZE, IMAGE_SIZE):
            raise DataFormatError(f"{source}: row {row}: its WebP face does not decode to "
                                  f"{IMAGE_SIZE}x{IMAGE_SIZE} pixels")
        images[row] = face
        start = end
    return images


def write_packed(path: str | Path, rows: ParsedRows, encoding: str = "rowdiff") -> None:
    """Every array of ``rows``, compressed, with the marker that tells the file apart; atomic."""
    if encoding not in PACK_ENCODINGS:
        raise ConfigError(f"encoding={encoding!r} is not allowed: {allowed(PACK_ENCODINGS)}")
    images = np.asarray(rows.images, dtype=np.uint8)
    arrays = {name: np.ascontiguousarray(getattr(rows, name), dtype=dtype) for name, (dtype, _) in ARRAYS.items()}
    with atomic_write(path) as handle:
        np.savez_compressed(handle, marker=np.array(MARKER), **encode_faces(images, encoding), **arrays)


# Faces compress a few times at most (rowdiff, webp); an array that claims far more than its stored
# bytes is a decompression bomb, and one that claims more than MAX_ARRAY_BYTES is no data set of
# faces. Small arrays may compress far better (a column of one label): up to EXPANSION_SLACK is free.
MAX_EXPANSION = 200
EXPANSION_SLACK = 64 * 2**20
MAX_ARRAY_BYTES = 4 * 2**30


def check_claimed_sizes(path: Path) -> None:
    """Read each array's header (shape and type) and refuse, before anything is decompressed, an
    archive whose arrays claim sizes no packed data set has."""
    source = str(path)
    if not zipfile.is_zipfile(path):
        raise DataFormatError(f"{source}: not a packed data set (not a .npz archive; make one with "
                              "python -m fer_lightning.pack)")
    with zipfile.ZipFile(path) as archive:
        for member in archive.infolist():
            with archive.open(member) as stream:
                try:
                    version = np.lib.format.read_magic(stream)
                    read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                                   (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                    if read_header is None:
                        raise ValueError(f"format version {version}")
                    shape, _, dtype = read_header(stream)  # the header only
                except (ValueError, OSError, SyntaxError) as error:
                    raise DataFormatError(f"{source}: {member.filename} is not a numpy array ({error})") from None
            claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if claimed > MAX_ARRAY_BYTES or claimed > MAX_EXPANSION * member.compress_size + EXPANSION_SLACK:
                raise DataFormatError(f"{source}: {member.filename} claims {claimed:,} bytes from "
                                      f"{member.compress_size:,} stored: not a packed data set this project wrote")


def read_packed(path: Path) -> ParsedRows:
    source = str(path)
    check_claimed_sizes(path)
    try:
        with np.load(path, allow_pickle=False) as stored:
            if "marker" not in stored.files or str(stored["marker"]) != MARKER:
                raise DataFormatError(f"{source}: not a packed data set of this project (no marker; "
                                      "make one with python -m fer_lightning.pack)")
            faces = next((names for names in FACE_ARRAYS.values() if all(n in stored.files for n in names)), ())
            missing = [name for name in ARRAYS if name not in stored.files] + ([] if faces else ["its faces"])
            if missing:
                raise DataFormatError(f"{source}: a packed data set without {', '.join(missing)}")
            arrays = {name: stored[name] for name in (*ARRAYS, *faces)}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise DataFormatError(f"{source}: cannot be read as a packed data set ({error})") from None
    images = decode_faces(arrays, source)
    count = len(images)
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
    return ParsedRows(images=images, **{name: arrays[name] for name in ARRAYS}, names=None, source=source)
