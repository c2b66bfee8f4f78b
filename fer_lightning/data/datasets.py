"""Torch datasets over uint8 images held in memory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W) uint8 or float in [0, 1] -> (1, H, W) float32 in [0, 1]."""
    tensor = torch.from_numpy(np.ascontiguousarray(image))
    if tensor.dtype == torch.uint8:
        tensor = tensor.float().div_(255.0)
    return tensor.float().unsqueeze(0)


class ImageArrayDataset(Dataset):
    """Images stay uint8 in memory (FER2013 is ~75 MB that way); each item is converted on access.

    ``labels=None`` (an unlabelled test file) yields ``-1`` as the label so batches keep one shape.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray | None = None,
        transform: Callable | None = None,
    ) -> None:
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"images must be (N, H, W) uint8, got {images.shape} {images.dtype}")
        self.images = images
        self.labels = labels
        self.transform = transform
        self._seeded_worker: int | None = None
        # Without augmentation every item is a fixed tensor: convert once, index after.
        self._fixed = None if transform is not None else torch.from_numpy(images).float().div_(255.0).unsqueeze(1)

    def __len__(self) -> int:
        return len(self.images)

    def _label(self, index: int) -> int:
        return -1 if self.labels is None else int(self.labels[index])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if self._fixed is not None:
            return self._fixed[index], self._label(index)
        self._seed_worker_once()
        image = self.transform(image=self.images[index])["image"]
        return to_tensor(image), self._label(index)

    def _seed_worker_once(self) -> None:
        """Give each loader worker its own augmentation stream.

        Every worker receives a copy of the same seeded pipeline; unseeded again they would all
        apply the same "random" augmentations. torch's per-worker seed is itself derived from the
        run's seed, so this stays repeatable.
        """
        info = get_worker_info()
        if info is None or self._seeded_worker == info.id:
            return
        if hasattr(self.transform, "set_random_seed"):
            self.transform.set_random_seed(info.seed % 2**32)
        self._seeded_worker = info.id

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, int]]:
        # DataLoader's batched fetch: one call per batch instead of one per image.
        return [self[i] for i in indices]


def dataset_labels(dataset: Any, limit: int = 10_000) -> np.ndarray:
    """Labels of an indexable (image, label) dataset: its ``labels`` array when it keeps one."""
    labels = getattr(dataset, "labels", None)
    if labels is not None:
        return np.asarray(labels)
    return np.asarray([int(dataset[i][1]) for i in range(min(len(dataset), limit))])


def dataset_images(dataset: Any, indices: np.ndarray) -> torch.Tensor:
    """``(N, C, H, W)`` float tensors of the chosen items, exactly as validation sees them."""
    return torch.stack([torch.as_tensor(dataset[int(i)][0]) for i in indices]).float()
