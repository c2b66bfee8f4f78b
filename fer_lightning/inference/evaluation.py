"""Evaluate a checkpoint or an ensemble on a labelled split (test, or val) or file; write eval.json.

Also the pieces the ensemble and predict commands share: rebuilding a run's data from its saved
config, batched probabilities (with optional test-time augmentation) and the metrics.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from fer_lightning.data.settings import datamodule_from_settings
from fer_lightning.errors import ConfigError, FerError
from fer_lightning.inference.test_time_augmentation import check_tta, tta_views
from fer_lightning.models.pretrained import is_pretrained, output_anchor, pretrained_entry
from fer_lightning.runs.saved_run import RUN_CONFIG, run_data_config

if TYPE_CHECKING:
    from fer_lightning.inference.checkpoint import Predictor

log = logging.getLogger(__name__)

# test: the held-out split; val: the split runs and test-time augmentation are chosen on.
EVAL_SPLITS = ("test", "val")
# The data settings that decide which images land in which split; members of one ensemble must
# agree on these (batch sizes, workers, caching and training augmentation may differ).
DATA_IDENTITY_KEYS = ("source", "path", "format", "test_path", "synthetic", "val_fraction", "split_seed")


# ------------------------------------------------------------------------------------- data
@dataclass
class LabelledImages:
    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray | None  # (N,) int64, or None for an unlabelled source
    transform: Callable | None  # the data config's deterministic eval transform, if any
    description: str
    split: str | None = None  # train/val/test of a data config; None for a file read as a whole


def data_identity(data: dict[str, Any]) -> dict[str, Any]:
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
    found = load_splits(data, (split,))
    if split not in found:
        raise FerError(f"the data ({data_summary(data)}) has no {split} split: name a labelled file with "
                       f"data.test_path=FILE, or other data with data=<name> data.path=...")
    return found[split]


def data_summary(data: dict[str, Any]) -> str:
    if data.get("source") == "synthetic":
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
    fer_lightning.inference.test_time_augmentation describes.
    """
    from torch.utils.data import DataLoader

    from fer_lightning.data.datasets import ImageArrayDataset

    check_tta(tta)
    module.eval()
    loader = DataLoader(ImageArrayDataset(images, None, transform), batch_size=batch_size, shuffle=False)
    batches = []
    for batch, _ in loader:
        views = [module(view.to(device)).float().cpu() for view in tta_views(batch, tta)]
        batches.append(torch.stack(views).mean(dim=0))
    return torch.cat(batches).numpy()


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


# ---------------------------------------------------------------------------------- command
def stored_data_config(predictor: Predictor, checkpoint: Path) -> dict[str, Any]:
    """The data a checkpoint was trained on: kept inside an ensemble file, or the run's config
    two levels above checkpoints/best.ckpt."""
    if predictor.data is not None:
        return predictor.data
    if is_pretrained(predictor.source):
        entry = pretrained_entry(predictor.source)
        raise ConfigError(f"{predictor.source}: name the data to evaluate on, for example {entry['evaluate_data']} "
                          "(the data it was trained on), or data.test_path=FILE")
    run_dir = checkpoint.resolve().parent.parent
    if not (run_dir / RUN_CONFIG).is_file():
        raise ConfigError(
            f"{checkpoint}: no run config beside it ({run_dir / RUN_CONFIG}), so its data is unknown: "
            "pass data=<fer2013|homework|folder|synthetic> (with data.path=...) or data.test_path=FILE"
        )
    return run_data_config(run_dir)


def check_split(split: str) -> str:
    if split not in EVAL_SPLITS:
        raise ConfigError(f"split={split!r}: allowed values are {', '.join(EVAL_SPLITS)}")
    return split


def evaluation_images(cfg: DictConfig, predictor: Predictor, checkpoint: Path, split: str) -> LabelledImages:
    given = OmegaConf.to_container(cfg.data, resolve=True) if cfg.get("data") else {}
    chosen = given if "_target_" in given else None  # data=<group> on the command line
    test_path = given.get("test_path")
    if test_path:
        # Only the named file is read; a stored data config (if any) adds its eval transform.
        try:
            base = chosen or stored_data_config(predictor, checkpoint)
        except ConfigError:
            base = None
        found = read_labelled_file(test_path, base)
    else:
        found = load_split(chosen or stored_data_config(predictor, checkpoint), split)
    if found.labels is None:
        raise FerError(f"{found.description}: no labels, so there is nothing to evaluate against: "
                       "pass data.test_path=FILE with a labelled test file")
    return found


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    from fer_lightning.inference.checkpoint import load_predictor

    tta = check_tta(str(cfg.tta))
    split = check_split(str(cfg.split))
    predictor = load_predictor(cfg.ckpt_path)
    checkpoint = output_anchor(cfg.ckpt_path)
    data = evaluation_images(cfg, predictor, checkpoint, split)
    probabilities = predict_probabilities(predictor.module, data.images, int(cfg.batch_size), tta, data.transform)
    result = {
        "checkpoint": str(cfg.ckpt_path) if is_pretrained(cfg.ckpt_path) else str(checkpoint.resolve()),
        "kind": predictor.kind,
        "members": predictor.member_count,
        "data": data.description,
        "split": data.split or "file",
        "num_images": int(len(data.images)),
        "tta": tta,
        "class_names": list(predictor.class_names),
        **classification_metrics(probabilities, data.labels, predictor.class_names),
    }
    default_name = "eval_val.json" if data.split == "val" else "eval.json"
    output = Path(cfg.output) if cfg.get("output") else checkpoint.parent / default_name
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    show(result)
    log.info("wrote %s", output)
    return result


def show(result: dict[str, Any]) -> None:
    from rich.table import Table

    from fer_lightning.terminal import console

    table = Table(title=f"{result['kind']} ({result['members']} member(s)) on {result['data']}, "
                        f"{result['num_images']} images, tta={result['tta']}",
                  caption=f"accuracy {100 * result['accuracy']:.2f} %   macro F1 {result['macro_f1']:.4f}")
    for name in ("class", "precision", "recall", "f1", "support"):
        table.add_column(name, justify="left" if name == "class" else "right")
    for name, row in result["per_class"].items():
        table.add_row(name, f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", str(row["support"]))
    console().print(table)
