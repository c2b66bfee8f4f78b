"""Entry points: pick the reader for a path and return its images by split or all together."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from fer_lightning.config.choices import FILE_FORMATS
from fer_lightning.data.readers.cache import cache_file, load_cached, save_cached
from fer_lightning.data.readers.csv_file import CsvFile, open_csv
from fer_lightning.data.readers.homework_csv import HOMEWORK_HEADER, read_homework_csv
from fer_lightning.data.readers.image_folder import read_image_folder
from fer_lightning.data.readers.kaggle_csv import KAGGLE_HEADER, read_kaggle_csv
from fer_lightning.data.readers.packed import is_packed, read_packed
from fer_lightning.data.readers.problems import check_on_bad_rows
from fer_lightning.data.readers.table import ImageSet, ParsedRows
from fer_lightning.errors import ConfigError, DataFormatError

log = logging.getLogger(__name__)

FORMATS = FILE_FORMATS
_CSV_READERS = {"kaggle_csv": read_kaggle_csv, "homework_csv": read_homework_csv}


def detect_csv_format(csv_file: CsvFile) -> str:
    """The header decides: Kaggle files name emotion/pixels/Usage, homework files label/id/feature."""
    columns = set(csv_file.columns)
    if columns & {"emotion", "pixels", "usage"}:
        return "kaggle_csv"
    if columns & {"feature", "label", "id"}:
        return "homework_csv"
    raise csv_file.header_problem(f"{KAGGLE_HEADER}, or {HOMEWORK_HEADER}")


def _existing_path(path: str | os.PathLike) -> Path:
    resolved = Path(path).expanduser()
    if not resolved.exists():
        # The absolute path matters: Hydra runs may change the working directory.
        where = "" if resolved.is_absolute() else f" (looked for {resolved.absolute()})"
        raise DataFormatError(f"{path}: no such file or folder{where}")
    return resolved


def _read(path: Path, fmt: str, on_bad_rows: str) -> ParsedRows:
    if path.is_dir():
        if fmt not in ("auto", "image_folder"):
            raise DataFormatError(f"{path}: is a folder, but format {fmt} reads a CSV file")
        return read_image_folder(path, on_bad_rows)
    if fmt == "image_folder":
        raise DataFormatError(f"{path}: is a file, but format image_folder reads a folder of images")
    if fmt == "packed" or (fmt == "auto" and is_packed(path)):
        return read_packed(path)
    csv_file = open_csv(path)
    try:
        reader = _CSV_READERS[detect_csv_format(csv_file) if fmt == "auto" else fmt]
        return reader(csv_file, on_bad_rows)
    finally:
        csv_file.close()


def _parse(path: str | os.PathLike, fmt: str, on_bad_rows: str, cache_dir: str | os.PathLike | None) -> ParsedRows:
    if fmt not in FORMATS:
        raise ConfigError(f"data.format={fmt!r}: allowed values are {', '.join(FORMATS)}")
    check_on_bad_rows(on_bad_rows)
    source = _existing_path(path)
    # A packed file reads as fast as a cache entry: caching it would only copy it.
    entry = cache_file(cache_dir, source, fmt) if cache_dir is not None and not is_packed(source) else None
    if entry is not None and (cached := load_cached(entry, str(source))) is not None:
        log.info("read %s from the cache %s", source, entry)
        return cached
    started = time.perf_counter()
    rows = _read(source, fmt, on_bad_rows)
    log.info("read %d images from %s in %.1f s", len(rows.images), source, time.perf_counter() - started)
    if entry is not None and rows.skipped == 0:
        save_cached(entry, rows)
    return rows


def read_dataset(path: str | os.PathLike, fmt: str = "auto", on_bad_rows: str = "raise",
                 cache_dir: str | os.PathLike | None = None) -> dict[str, ImageSet]:
    """Split name ("train", "val", "test") -> its images, for the splits the source holds.

    ``fmt``: "auto" (a folder is an image folder; an .npz is a packed data set; a CSV's header
    tells Kaggle from homework), "kaggle_csv", "homework_csv", "image_folder" or "packed". ``on_bad_rows``: "raise" stops with one
    DataFormatError listing the problems; "skip" leaves bad rows/images out with a
    SkippedDataWarning. ``cache_dir``: keep the parsed result there as .npz for fast re-reads.
    """
    return _parse(path, fmt, on_bad_rows, cache_dir).by_split()


def read_rows(path: str | os.PathLike, fmt: str = "auto", on_bad_rows: str = "raise") -> ParsedRows:
    """Every row of the source with its split and ids, as parsed (what ``pack`` stores)."""
    return _parse(path, fmt, on_bad_rows, None)


def read_all_rows(path: str | os.PathLike, fmt: str = "auto", on_bad_rows: str = "raise",
                  cache_dir: str | os.PathLike | None = None) -> ImageSet:
    """Every row or image of the source whatever its split, in file order; ids number them
    within the whole file (homework files: the id column)."""
    return _parse(path, fmt, on_bad_rows, cache_dir).whole()
