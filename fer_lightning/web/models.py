"""The models the demo page may use: a catalog fixed when the demo starts (the shipped models, the
model given on its command line, and the checkpoint and ensemble files under the folders it names)
and a bounded cache of the ones loaded.

A visitor picks an entry of the catalog by its label; nothing a visitor types is ever opened as a
path, and an unknown label gets one answer that says nothing about the server's files.
"""

from __future__ import annotations

import os
import stat
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fer_lightning.errors import ConfigError, FerError

MODEL_SUFFIXES = (".ckpt", ".pt")
# A folder of sweeps holds a few checkpoints a run; more than this is not a folder of models.
MAX_LISTED_FILES = 500


class UnknownModel(FerError):
    """A label that is not in the page's catalog (the message never names a server path)."""


def _is_regular_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def model_files(folder: Path) -> list[Path]:
    """The checkpoint and ensemble files under ``folder`` (resolved), links that lead outside it left out."""
    root = folder.resolve()
    found: list[Path] = []
    for directory, subdirectories, files in os.walk(root):
        subdirectories.sort()
        for name in sorted(files):
            if not name.endswith(MODEL_SUFFIXES):
                continue
            resolved = (Path(directory) / name).resolve()
            if resolved.is_relative_to(root) and _is_regular_file(resolved):
                found.append(resolved)
                if len(found) > MAX_LISTED_FILES:
                    raise ConfigError(f"models={folder}: more than {MAX_LISTED_FILES} checkpoint files under "
                                      "it; name the folder of one sweep or run instead")
    return found


class ModelCatalog:
    """Label -> the file ``Recognizer.from_checkpoint`` loads, resolved (and a shipped file's sha256
    checked) once, when the demo starts."""

    def __init__(self, entries: dict[str, str], default: str) -> None:
        self.entries = entries
        self.default = default

    @classmethod
    def build(cls, start_model: str, folders: Iterable[str | Path] = ()) -> ModelCatalog:
        """The shipped models, ``start_model`` (the operator's own choice) and the files under ``folders``."""
        from fer_lightning.checkpoints import resolve
        from fer_lightning.checkpoints.shipped import PRETRAINED, is_pretrained, read_registry

        registry = read_registry()
        shipped = sorted(registry["models"], key=lambda name: name != registry.get("default"))
        entries = {f"{PRETRAINED}:{name}": str(resolve(f"{PRETRAINED}:{name}")) for name in shipped}
        if is_pretrained(start_model):
            name = str(start_model).partition(":")[2] or registry.get("default")
            default = f"{PRETRAINED}:{name}"
            if default not in entries:
                raise ConfigError(f"ckpt_path={start_model}: no such shipped model (shipped: {', '.join(shipped)})")
        else:
            start = Path(start_model)
            default = str(start_model)
            entries = {default: str(start.resolve()), **entries}
        for folder in folders:
            path = Path(folder)
            if not path.is_dir():
                raise ConfigError(f"models={folder}: no such folder")
            for file in model_files(path):
                # Labelled relative to the folder as it was named, so the page shows no more than that.
                entries.setdefault(str(path / file.relative_to(path.resolve())), str(file))
        return cls(entries, default)

    @property
    def labels(self) -> list[str]:
        return list(self.entries)

    def source(self, label: Any) -> str:
        """What to load for a label the page sent; UnknownModel for anything else."""
        if not isinstance(label, str) or label not in self.entries:
            raise UnknownModel("this model is not offered here: choose one from the list")
        return self.entries[label]


class Recognizers:
    """Loaded models, keyed by the file they come from and bounded: switching back to a recent model
    costs nothing, and the page never holds more than ``max_models`` of them."""

    def __init__(self, max_models: int = 3, **options: Any) -> None:
        self.max_models = max_models
        self.options = options
        self.loaded: OrderedDict[str, Any] = OrderedDict()

    @staticmethod
    def key(source: str) -> str:
        return str(Path(source).resolve())

    def get(self, source: str, backend: str = "torch", precision: str = "fp32"):
        """The recognizer of ``source`` on ``backend`` (each backend's is loaded, and counted, apart)."""
        from fer_lightning.inference.recognizer import Recognizer

        key = f"{self.key(source)} {backend} {precision}"
        if key in self.loaded:
            self.loaded.move_to_end(key)
            return self.loaded[key]
        recognizer = Recognizer.from_checkpoint(source, backend=backend, precision=precision, **self.options)
        self.loaded[key] = recognizer
        while len(self.loaded) > self.max_models:
            self.loaded.popitem(last=False)
        return recognizer


__all__ = ["ModelCatalog", "Recognizers", "UnknownModel", "model_files"]
