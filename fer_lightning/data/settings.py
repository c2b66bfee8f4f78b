"""The data module from its settings as plain values: the one way commands rebuild a run's data.

Data settings are read back from run directories (``.hydra/config.yaml``) and ensemble files,
which may come from anyone. They are never handed to ``hydra.utils.instantiate``: the only class
built is this project's data module, every setting must be one of its arguments and hold plain
values (numbers, strings, booleans, lists and mappings of them), and augmentation pipelines go
through the allow-list of ``fer_lightning.data.augmentation``. Anything else is refused in one line.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fer_lightning.config.choices import SYNTHETIC
from fer_lightning.data.plain import plain_value
from fer_lightning.errors import ConfigError

if TYPE_CHECKING:
    from fer_lightning.data.datamodule import FERDataModule

DATA_MODULE_TARGET = "fer_lightning.data.datamodule.FERDataModule"
# Hydra's instruction keys that a saved config carries and that mean nothing here.
IGNORED_KEYS = ("_target_", "_recursive_")
AUGMENTATION_STAGES = ("train", "eval")
def current_shape(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Stored data settings as today's configs write them. Older runs and ensemble files said where the
    faces came from twice, ``source`` (synthetic or file) beside ``format``; ``format`` says it alone now.
    The synthetic faces' sizes mean nothing for a file, so they are left out there."""
    settings = dict(settings)
    if settings.pop("source", None) == SYNTHETIC:
        settings["format"] = SYNTHETIC
    if settings.get("format", SYNTHETIC) != SYNTHETIC:
        settings.pop("synthetic", None)
    if not settings.get("folds"):  # written before k-fold, or without it: the same splits
        settings.pop("folds", None)
        settings.pop("fold", None)
    return settings


def is_synthetic(settings: Mapping[str, Any]) -> bool:
    return current_shape(settings).get("format", SYNTHETIC) == SYNTHETIC


def data_settings(settings: Any, where: str) -> dict[str, Any]:
    """Checked data settings: the data module's own arguments with plain values, pipelines allowed."""
    from fer_lightning.data.augmentation import build_transform
    from fer_lightning.data.datamodule import FERDataModule

    if not isinstance(settings, Mapping):
        raise ConfigError(f"{where}: the data settings are not a mapping")
    settings = current_shape(settings)
    target = settings.get("_target_", DATA_MODULE_TARGET)
    if target != DATA_MODULE_TARGET:
        raise ConfigError(f"{where}: data._target_={target!r} refused: stored data settings can only "
                          f"describe this project's data module ({DATA_MODULE_TARGET})")
    known = inspect.signature(FERDataModule).parameters
    checked: dict[str, Any] = {}
    for key, value in settings.items():
        if key in IGNORED_KEYS:
            continue
        if key not in known:
            raise ConfigError(f"{where}: data.{key} is not a setting of this project's data module")
        if key == "augmentation":
            value = value or {}
            if not isinstance(value, Mapping) or set(value) - set(AUGMENTATION_STAGES):
                raise ConfigError(f"{where}: data.augmentation must hold only {' and '.join(AUGMENTATION_STAGES)}")
            for stage, pipeline in value.items():
                build_transform(pipeline, where=f"{where}: data.augmentation.{stage}")  # refuses anything unknown
            checked[key] = dict(value)
        else:
            checked[key] = plain_value(value, f"{where}: data.{key}")
    if checked.get("cache_dir") not in (None, local_cache_dir()):
        # A stored file may not choose a folder to write in: elsewhere, nothing is cached.
        checked["cache_dir"] = None
    return checked


def local_cache_dir() -> str:
    from fer_lightning.config.paths import outputs_dir

    return str(Path(outputs_dir()) / "cache")


def datamodule_from_settings(settings: Any, where: str) -> FERDataModule:
    """This project's data module built from checked settings (see ``data_settings``)."""
    from fer_lightning.data.datamodule import FERDataModule

    return FERDataModule(**data_settings(settings, where))
