"""Shuffling and augmentation that depend only on (seed, epoch), not on what ran before.

A run killed mid-epoch resumes from the checkpoint of the last finished epoch; because each
epoch's order and augmentation draws are a function of the seed and the epoch number alone,
the resumed run repeats exactly what the uninterrupted run would have done.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch.utils.data import Sampler

from fer_lightning.seeds import epoch_seed


class EpochSeededSampler(Sampler[int]):
    """A random permutation (or class-balanced draw) per epoch, seeded by (seed, epoch).

    ``epoch_of`` reports the current epoch when iteration starts (the trainer's, so a resumed
    run picks up the right one); ``on_epoch`` is told the epoch's seed before the first index,
    which is where the augmentation pipeline is reseeded.
    """

    def __init__(
        self,
        size: int,
        seed: int,
        epoch_of: Callable[[], int],
        weights: torch.Tensor | None = None,
        on_epoch: Callable[[int], None] | None = None,
    ) -> None:
        self.size = size
        self.seed = seed
        self.epoch_of = epoch_of
        self.weights = weights
        self.on_epoch = on_epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        seed = epoch_seed(self.seed, self.epoch_of())
        generator = torch.Generator().manual_seed(seed)
        if self.on_epoch is not None:
            self.on_epoch(seed)
        if self.weights is None:
            order = torch.randperm(self.size, generator=generator)
        else:
            order = torch.multinomial(self.weights, self.size, replacement=True, generator=generator)
        yield from order.tolist()
