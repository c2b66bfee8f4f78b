"""The public ImageSet and the reader-internal table every format is parsed into.

Each reader produces one ``ParsedRows`` (all rows of the source, each tagged with its split);
``read_dataset`` groups it by split and ``read_all_rows`` returns it whole, so both views (and the
on-disk cache) come from a single parse.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fer_lightning.classes import IMAGE_SIZE, NUM_CLASSES
from fer_lightning.errors import DataFormatError

SPLITS: tuple[str, ...] = ("train", "val", "test")
NO_LABEL = -1


@dataclass(frozen=True)
class ImageSet:
    """Images of one split (or of a whole source) with their labels and ids."""

    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray | None  # (N,) int64 in 0..6, or None when the source has no labels
    # (N,) int64: the homework id column, else 0-based order within the file/split (or folder
    # listing); rows skipped as bad keep their number, so ids always point at the original rows.
    ids: np.ndarray
    source: str  # file or folder path, for messages
    names: tuple[str, ...] | None = None  # image paths relative to the folder; None for CSV files

    def __post_init__(self) -> None:
        count = len(self.images)
        if self.images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or self.images.dtype != np.uint8:
            raise ValueError(f"images must be (N, {IMAGE_SIZE}, {IMAGE_SIZE}) uint8, got "
                             f"{self.images.shape} {self.images.dtype}")
        if self.labels is not None and (len(self.labels) != count or self.labels.dtype != np.int64):
            raise ValueError("labels must be (N,) int64")
        if len(self.ids) != count or (self.names is not None and len(self.names) != count):
            raise ValueError("ids and names must have one entry per image")

    def __len__(self) -> int:
        return len(self.images)


@dataclass(frozen=True)
class ParsedRows:
    """Every kept row/image of one source.

    ``split_ids`` number the rows within their split and ``file_ids`` within the whole source.
    Both count rows that were later skipped as bad, so ids still point at the original rows.
    """

    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) int64, NO_LABEL where the source gives none
    splits: np.ndarray  # (N,) int8 index into SPLITS
    split_ids: np.ndarray  # (N,) int64
    file_ids: np.ndarray  # (N,) int64
    names: np.ndarray | None  # (N,) str, folders only
    source: str
    skipped: int = 0  # bad rows/images left out under on_bad_rows="skip"

    def _image_set(self, keep: np.ndarray | slice, ids: np.ndarray, what: str) -> ImageSet:
        labels = self.labels[keep]
        unlabelled = labels == NO_LABEL
        if unlabelled.all():
            labels_or_none = None
        elif unlabelled.any():
            raise DataFormatError(f"{self.source}: {what} mixes labelled and unlabelled images; "
                                  "read the labelled and unlabelled parts separately")
        else:
            labels_or_none = labels
        names = None if self.names is None else tuple(self.names[keep].tolist())
        return ImageSet(self.images[keep], labels_or_none, ids[keep], self.source, names)

    def split_counts(self) -> dict[str, int]:
        """Rows per split the source holds, in SPLITS order."""
        counts = np.bincount(self.splits.astype(np.int64), minlength=len(SPLITS))
        return {name: int(count) for name, count in zip(SPLITS, counts) if count}

    def by_split(self) -> dict[str, ImageSet]:
        sets = {}
        for code, name in enumerate(SPLITS):
            keep = np.flatnonzero(self.splits == code)
            if len(keep):
                sets[name] = self._image_set(keep, self.split_ids, f"split {name!r}")
        return sets

    def whole(self) -> ImageSet:
        return self._image_set(slice(None), self.file_ids, "the source")


class RowsBuilder:
    """Accumulates rows as readers accept them; ``build`` stacks them into a ParsedRows."""

    def __init__(self, source: str, with_names: bool = False) -> None:
        self.source = source
        self._images: list[np.ndarray] = []
        self._labels: list[int] = []
        self._splits: list[int] = []
        self._split_ids: list[int] = []
        self._file_ids: list[int] = []
        self._names: list[str] | None = [] if with_names else None

    def __len__(self) -> int:
        return len(self._images)

    def add(self, image: np.ndarray, label: int, split: int, split_id: int, file_id: int,
            name: str | None = None) -> None:
        if not (label == NO_LABEL or 0 <= label < NUM_CLASSES):
            raise ValueError(f"label {label} out of range")  # readers validate first; this guards bugs
        self._images.append(image)
        self._labels.append(label)
        self._splits.append(split)
        self._split_ids.append(split_id)
        self._file_ids.append(file_id)
        if self._names is not None:
            self._names.append(name or "")

    def build(self, skipped: int = 0) -> ParsedRows:
        if not self._images:
            raise DataFormatError(f"{self.source}: no usable rows or images left to read")
        images = np.stack(self._images).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
        return ParsedRows(
            images=images,
            labels=np.asarray(self._labels, dtype=np.int64),
            splits=np.asarray(self._splits, dtype=np.int8),
            split_ids=np.asarray(self._split_ids, dtype=np.int64),
            file_ids=np.asarray(self._file_ids, dtype=np.int64),
            names=None if self._names is None else np.asarray(self._names, dtype=str),
            source=self.source,
            skipped=skipped,
        )
