"""Albumentations pipelines declared in config (conf/augmentation/*.yaml), built from plain values.

A pipeline is a tree of ``{_target_: albumentations.<Name>, <argument>: <plain value>, ...}``
mappings. It is built here, not by ``hydra.utils.instantiate``, because the same settings are read
back from run directories and ensemble files that may come from anyone: only the transforms named
in ``TRANSFORMS`` can be built, their arguments must be numbers, strings, booleans or lists of them,
and anything else is refused with one line. Nothing stored in a file can name code.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from fer_lightning.data.plain import plain_value
from fer_lightning.errors import ConfigError

# Albumentations otherwise asks the network for a newer version at import.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

# Pixel and geometry transforms that read nothing but the image. Add a name here to allow it.
TRANSFORMS = frozenset({
    "Affine", "CenterCrop", "CLAHE", "CoarseDropout", "Downscale", "ElasticTransform", "GaussianBlur",
    "GaussNoise", "GridDistortion", "HorizontalFlip", "MotionBlur", "OpticalDistortion", "PadIfNeeded",
    "Perspective", "RandomBrightnessContrast", "RandomCrop", "RandomGamma", "RandomResizedCrop",
    "RandomScale", "Resize", "Rotate", "SafeRotate", "Sharpen", "ShiftScaleRotate", "VerticalFlip",
})
# Containers: their ``transforms`` argument is a list of pipelines.
COMPOSITIONS = frozenset({"Compose", "OneOf", "SomeOf", "Sequential"})
PREFIX = "albumentations."


def allowed_names() -> str:
    return ", ".join(sorted(COMPOSITIONS | TRANSFORMS))


def _build(node: Any, where: str) -> Any:
    import albumentations

    if not isinstance(node, Mapping) or "_target_" not in node:
        raise ConfigError(f"{where}: expected a transform ({{_target_: albumentations.<Name>, ...}})")
    target = node["_target_"]
    name = target[len(PREFIX):] if isinstance(target, str) and target.startswith(PREFIX) else None
    if name not in TRANSFORMS | COMPOSITIONS:
        raise ConfigError(f"{where}._target_={target!r} is not an allowed transform: "
                          f"albumentations.<one of {allowed_names()}>")
    kwargs = {}
    for key, value in node.items():
        if key == "_target_":
            continue
        if not isinstance(key, str) or key.startswith("_"):
            raise ConfigError(f"{where}.{key}: not allowed in a transform")
        if name in COMPOSITIONS and key == "transforms":
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"{where}.transforms: expected a list of transforms")
            kwargs[key] = [_build(item, f"{where}.transforms[{i}]") for i, item in enumerate(value)]
        else:
            kwargs[key] = plain_value(value, f"{where}.{key}")
    try:
        return getattr(albumentations, name)(**kwargs)
    except (TypeError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"{where} ({name}): {first[:200]}") from None


def build_transform(config: Mapping[str, Any] | None, seed: int | None = None,
                    where: str = "augmentation") -> Callable | None:
    """An ``albumentations`` pipeline from its plain settings; ``None`` or empty means no transform.

    Albumentations draws from its own generators, not numpy's or torch's, so a run is repeatable
    only when the pipeline itself is seeded.
    """
    if not config:
        return None
    from omegaconf import DictConfig, OmegaConf

    if isinstance(config, DictConfig):
        config = OmegaConf.to_container(config, resolve=True)
    transform = _build(config, where)
    if seed is not None and hasattr(transform, "set_random_seed"):
        transform.set_random_seed(seed)
    return transform
