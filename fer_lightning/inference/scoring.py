"""Scoring a network on labelled faces, shared by evaluate, the ensemble, publish and the report: the
data a run was trained on rebuilt from its saved settings, batched probabilities (with optional
test-time augmentation) on a chosen device, and the metrics."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fer_lightning.config.choices import EVAL_SPLITS
from fer_lightning.data.settings import current_shape, datamodule_from_settings, is_synthetic
from fer_lightning.errors import ConfigError, FerError
from fer_lightning.inference.tta import check_tta, tta_views

log = logging.getLogger(__name__)

# The data settings that decide which images land in which split; members of one ensemble must
# agree on these (batch sizes, workers, caching and training augmentation may differ).
DATA_IDENTITY_KEYS = ("format", "path", "test_path", "synthetic", "val_fraction", "split_seed", "folds", "fold")


# ------------------------------------------------------------------------------------- data
@dataclass
class LabelledImages:
    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray | None  # (N,) int64, or None for an unlabelled source
    transform: Callable | None  # the data config's deterministic eval transform, if any
    description: str
    split: str | None = None  # train/val/test of a data config; None for a file read as a whole


def data_identity(data: dict[str, Any]) -> dict[str, Any]:
    data = current_shape(data)
    return {key: data.get(key) for key in DATA_IDENTITY_KEYS}


def eval_transform(data: dict[str, Any] | None) -> Callable | None:
    from fer_lightning.data.augmentation import build_transform

    return build_transform(((data or {}).get("augmentation") or {}).get("eval"))


def load_splits(data: dict[str, Any], names: tuple[str, ...]) -> dict[str, LabelledImages]:
    """The named splits of a data config (read once), as the training run's data module reads
    them; a split the data does not have is left out."""
    datamodule = datamodule_from_settings(data, where=data_summary(data))
    datamodule.setup()
    transform = eval_transform(data)
    return {
        name: LabelledImages(datamodule.splits[name].images, datamodule.splits[name].labels, transform,
                             f"{datamodule.describe()}: {name}", name)
        for name in names if datamodule.has_split(name, labelled=False)
    }


def load_split(data: dict[str, Any], split: str) -> LabelledImages:
    missing = FerError(f"the data ({data_summary(data)}) has no {split} split: name a labelled file with "
                       f"data.test_path=FILE, or other data with data=<name> data.path=...")
    # Synthetic faces say their split sizes in their settings: no need to draw them all to find out.
    if is_synthetic(data) and (data.get("synthetic") or {}).get(split) == 0:
        raise missing
    found = load_splits(data, (split,))
    if split not in found:
        raise missing
    return found[split]


def data_summary(data: dict[str, Any]) -> str:
    if is_synthetic(data):
        return "synthetic faces " + ", ".join(f"{k}={v}" for k, v in (data.get("synthetic") or {}).items())
    return f"{data.get('path')}" + (f" + test {data['test_path']}" if data.get("test_path") else "")


def read_labelled_file(path: str | Path, data: dict[str, Any] | None) -> LabelledImages:
    from fer_lightning.data.readers import read_all_rows

    rows = read_all_rows(path, fmt="auto", on_bad_rows=(data or {}).get("on_bad_rows", "raise"))
    return LabelledImages(rows.images, rows.labels, eval_transform(data), str(path))


# ---------------------------------------------------------------------------- probabilities
@torch.inference_mode()
def predict_probabilities(module: torch.nn.Module, images: np.ndarray, batch_size: int = 256,
                          tta: str = "none", transform: Callable | None = None,
                          device: torch.device | str = "cpu") -> np.ndarray:
    """(N, 48, 48) uint8 -> (N, classes) float32 probabilities, one batched pass over the images.

    ``tta`` (``none``, ``flip``, ``ten_crop``) averages the probabilities of the views that
    fer_lightning.inference.tta describes.
    """
    from torch.utils.data import DataLoader

    from fer_lightning.data.datasets import ImageArrayDataset

    check_tta(tta)
    device = torch.device(device)
    if next(module.parameters(), torch.empty(0)).device != device:
        # A copy: the caller's module (and any state dict taken from it) stays where it was.
        module = copy.deepcopy(module).to(device)
    if module.training:  # walking every submodule costs a tenth of a one-face call
        module.eval()
    if transform is None:
        # Fixed tensors: sliced directly, without a loader's per-call cost (most of a one-face call's time).
        pixels = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0).unsqueeze(1)
        loader = ((pixels[start:start + batch_size], None) for start in range(0, len(pixels), batch_size))
    else:
        loader = DataLoader(ImageArrayDataset(images, None, transform), batch_size=batch_size, shuffle=False)
    batches = []
    for batch, _ in loader:
        views = [module(view.to(device)).float().cpu() for view in tta_views(batch, tta)]
        batches.append(torch.stack(views).mean(dim=0))
    return torch.cat(batches).numpy()


def resolve_device(name: str) -> torch.device:
    """``auto`` (the GPU when there is one), ``cpu``, ``cuda`` or ``cuda:N``; a GPU that is not there is one line."""
    from fer_lightning.errors import ConfigError

    name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device={name!r} is not allowed: auto, cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"device={name!r} is not allowed: auto, cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name}: this machine has no GPU that torch can use (use device=auto or cpu)")
    return device


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(probabilities.argmax(axis=1) == labels))


def classification_metrics(probabilities: np.ndarray, labels: np.ndarray,
                           class_names: tuple[str, ...]) -> dict[str, Any]:
    """Accuracy, macro F1, per-class precision/recall/F1/support and the confusion matrix
    (rows: true class, columns: predicted class)."""
    from torchmetrics.functional.classification import (
        multiclass_accuracy,
        multiclass_confusion_matrix,
        multiclass_f1_score,
        multiclass_precision,
        multiclass_recall,
    )

    classes = len(class_names)
    preds = torch.from_numpy(probabilities).argmax(dim=1)
    target = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    precision = multiclass_precision(preds, target, classes, average="none")
    recall = multiclass_recall(preds, target, classes, average="none")
    f1 = multiclass_f1_score(preds, target, classes, average="none")
    support = torch.bincount(target, minlength=classes)
    return {
        "accuracy": float(multiclass_accuracy(preds, target, classes, average="micro")),
        "macro_f1": float(multiclass_f1_score(preds, target, classes, average="macro")),
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                   "support": int(support[i])}
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": multiclass_confusion_matrix(preds, target, classes).tolist(),
    }


# ---------------------------------------------------------------------- the data to evaluate on


def check_split(split: str) -> str:
    if split not in EVAL_SPLITS:
        raise ConfigError(f"split={split!r}: allowed values are {', '.join(EVAL_SPLITS)}")
    return split


def data_files(data: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(what, path) of the files a data config reads."""
    data = data or {}
    return [(f"the data it evaluates on (data.{key})", str(data[key]))
            for key in ("path", "test_path") if isinstance(data.get(key), str) and data[key]]
