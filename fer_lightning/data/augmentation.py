"""Albumentations pipelines declared in config (conf/augmentation/*.yaml)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

# Albumentations otherwise asks the network for a newer version at import.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


def build_transform(config: Mapping[str, Any] | None, seed: int | None = None) -> Callable | None:
    """Instantiate an ``albumentations.Compose`` config; ``None`` or an empty list means no transform.

    Albumentations draws from its own generators, not numpy's or torch's, so a run is repeatable
    only when the pipeline itself is seeded.
    """
    if not config:
        return None
    from hydra.utils import instantiate

    transform = instantiate(config, _convert_="all")
    if not callable(transform):
        raise TypeError(f"augmentation config did not build a transform: {transform!r}")
    if seed is not None and hasattr(transform, "set_random_seed"):
        transform.set_random_seed(seed)
    return transform
