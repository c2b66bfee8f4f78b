"""Batches cut from a split held whole on the training device: no loader, no copy per batch.

FER2013 is 75 MB as uint8, nothing beside a GPU's memory; a GPU epoch of the report's network is
about a second, faster than a few CPU cores can index, convert and copy 28,709 images. With the split
resident on the device a batch is one gather and one conversion there. Order comes from the same
per-(seed, epoch) sampler as the loader's, so a resident run shuffles exactly as a loader run does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch


class ResidentBatches:
    """Iterable of ``(images, labels)`` batches on ``device``: float (N, 1, H, W) in [0, 1], int64 labels.

    ``order`` gives each epoch's index order (a sampler); ``None`` keeps the stored order. With
    ``world_size > 1`` each rank takes every ``world_size``-th index of that order, from ``rank``:
    the ranks share one permutation (same seed) and split it, as DistributedSampler does, padded with
    the order's first indices to a multiple of ``world_size`` so that every rank steps equally often
    (a rank with one batch fewer would leave the others waiting in their gradient exchange).
    Unlabelled images get label -1, as the loader's dataset gives them.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray | None, batch_size: int, device: torch.device | str,
                 order: Iterable[int] | None = None, rank: int = 0, world_size: int = 1) -> None:
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"images must be (N, H, W) uint8, got {images.shape} {images.dtype}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.device = torch.device(device)
        self.images = torch.from_numpy(np.ascontiguousarray(images)).to(self.device).unsqueeze(1)
        label_array = np.full(len(images), -1) if labels is None else np.asarray(labels)
        self.labels = torch.from_numpy(label_array.astype(np.int64)).to(self.device)
        self.batch_size = batch_size
        self.order = order
        self.rank = rank
        self.world_size = world_size

    def _indices(self) -> torch.Tensor:
        if self.order is None:
            indices = torch.arange(len(self.images))
        else:
            indices = torch.as_tensor(list(self.order), dtype=torch.int64)
        padding = self._count() * self.world_size - len(indices)
        if padding:
            indices = torch.cat([indices, indices[:padding]])
        return indices[self.rank::self.world_size].to(self.device)

    def _count(self) -> int:
        """Indices per rank: all of them on one device, the padded share of each under DDP."""
        return -(-len(self.images) // self.world_size)

    def __len__(self) -> int:
        return -(-self._count() // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        indices = self._indices()
        for start in range(0, len(indices), self.batch_size):
            chosen = indices[start:start + self.batch_size]
            yield self.images[chosen].float().div_(255.0), self.labels[chosen]
