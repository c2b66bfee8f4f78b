"""What a setting stored in a file (a run's saved config, an ensemble file) may hold: plain values
only, never an instruction that names code."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fer_lightning.errors import ConfigError

PLAIN = (bool, int, float, str, type(None))


def plain_value(value: Any, where: str) -> Any:
    """``value`` if it is plain data all the way down, else a one-line ConfigError naming ``where``."""
    if isinstance(value, PLAIN):
        return value
    if isinstance(value, (list, tuple)):
        return [plain_value(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str) or key.startswith("_"):
                raise ConfigError(f"{where}.{key}: not allowed in stored settings (they are plain values, never code)")
        return {key: plain_value(item, f"{where}.{key}") for key, item in value.items()}
    raise ConfigError(f"{where}: only numbers, strings, booleans, lists and mappings are allowed, "
                      f"not a {type(value).__name__}")
