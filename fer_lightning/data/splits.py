"""Seeded, stratified train/validation split for sources that ship no validation set."""

from __future__ import annotations

import numpy as np


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (train_indices, val_indices), each sorted, holding ``val_fraction`` of every class out.

    Every class with at least two images keeps at least one on each side, so a rare class
    (FER2013's "disgust") is never missing from validation.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    val_parts = []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        take = int(round(val_fraction * len(members)))
        if len(members) >= 2:
            take = min(max(take, 1), len(members) - 1)
        val_parts.append(members[:take])
    val = np.sort(np.concatenate(val_parts)) if val_parts else np.array([], dtype=np.int64)
    train = np.setdiff1d(np.arange(len(labels)), val)
    return train, val


def stratified_folds(labels: np.ndarray, folds: int, seed: int) -> list[np.ndarray]:
    """``folds`` sorted index arrays that together hold every image once, each with about the same
    share of every class: each class is shuffled (seeded) and dealt round-robin, from a fold chosen
    by the seed, so the folds' sizes differ by at most one image per class."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in range(folds)]
    start = 0
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        for offset in range(folds):
            parts[(start + offset) % folds].append(members[offset::folds])
        start = (start + len(members)) % folds  # the next class fills the folds this one left shorter
    return [np.sort(np.concatenate(part)) if part else np.array([], dtype=np.int64) for part in parts]
