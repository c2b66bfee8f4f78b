"""Evaluate a checkpoint or an ensemble on a labelled split (test, or val) or file; write eval.json.

Also the pieces the ensemble and predict commands share: rebuilding a run's data from its saved
config, batched probabilities (with optional test-time augmentation) and the metrics.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from fer_lightning.checkpoints import resolve
from fer_lightning.checkpoints.shipped import (
    is_pretrained,
    output_anchor,
    pretrained_entry,
    pretrained_file,
)
from fer_lightning.config.checks import check_evaluate_config
from fer_lightning.config.choices import EVAL_SPLITS
from fer_lightning.data.settings import datamodule_from_settings
from fer_lightning.errors import ConfigError, FerError
from fer_lightning.files import check_output, read_json_object, write_text
from fer_lightning.inference.tta import check_tta, tta_views
from fer_lightning.runs.saved_run import RUN_CONFIG, run_data_config

if TYPE_CHECKING:
    from fer_lightning.checkpoints.predictor import Predictor

log = logging.getLogger(__name__)

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
    fer_lightning.inference.tta describes.
    """
    from torch.utils.data import DataLoader

    from fer_lightning.data.datasets import ImageArrayDataset

    check_tta(tta)
    device = torch.device(device)
    if next(module.parameters(), torch.empty(0)).device != device:
        # A copy: the caller's module (and any state dict taken from it) stays where it was.
        module = copy.deepcopy(module).to(device)
    module.eval()
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


def given_data(cfg: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(cfg.data, resolve=True) if cfg.get("data") else {}  # type: ignore[return-value]


def evaluation_data(cfg: DictConfig, predictor: Predictor,
                    checkpoint: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The data config to evaluate on (or, with a test file, to take its eval transform from) and
    the labelled test file named on the command line, if any."""
    given = given_data(cfg)
    chosen = given if "_target_" in given else None  # data=<group> on the command line
    test_path = given.get("test_path")
    if test_path:
        # Only the named file is read; a stored data config (if any) adds its eval transform.
        try:
            return chosen or stored_data_config(predictor, checkpoint), test_path
        except ConfigError:
            return None, test_path
    return chosen or stored_data_config(predictor, checkpoint), None


def evaluation_images(data: dict[str, Any] | None, test_path: str | None, split: str) -> LabelledImages:
    found = read_labelled_file(test_path, data) if test_path else load_split(data or {}, split)
    if found.labels is None:
        raise FerError(f"{found.description}: no labels, so there is nothing to evaluate against: "
                       "pass data.test_path=FILE with a labelled test file")
    return found


# ------------------------------------------------------------------------------ safe output
# What every evaluation result holds; a JSON object without them was not written by evaluate.
RESULT_KEYS = ("accuracy", "confusion_matrix")


def is_evaluation_result(path: Path) -> bool:
    document = read_json_object(path)
    return document is not None and all(key in document for key in RESULT_KEYS)


def data_files(data: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(what, path) of the files a data config reads."""
    data = data or {}
    return [(f"the data it evaluates on (data.{key})", str(data[key]))
            for key in ("path", "test_path") if isinstance(data.get(key), str) and data[key]]


def evaluation_output(cfg: DictConfig, checkpoint: Path) -> Path:
    if cfg.get("output"):
        return Path(cfg.output)
    # A named test file is evaluated whatever the split says, and its result is eval.json.
    on_val = cfg.split == "val" and not given_data(cfg).get("test_path")
    name = "eval_val" if on_val else "eval"
    # Results of other settings or of another shipped model (which share one folder) never replace it.
    if str(cfg.tta) != "none":
        name += f"_tta-{cfg.tta}"
    if is_pretrained(cfg.ckpt_path):
        name = f"{checkpoint.stem}_{name}"
    return checkpoint.parent / f"{name}.json"


def check_evaluation_output(cfg: DictConfig, output: Path, checkpoint: Path,
                            data: dict[str, Any] | None = None) -> None:
    inputs = [("the checkpoint it reads", checkpoint), *data_files(given_data(cfg)), *data_files(data)]
    check_output(output, inputs, is_evaluation_result, bool(cfg.get("overwrite", False)),
                 kind="an evaluate result")


# ---------------------------------------------------------------------------------- command
def evaluate(cfg: DictConfig) -> dict[str, Any]:
    from fer_lightning.checkpoints.predictor import load_predictor

    check_evaluate_config(cfg)
    tta, split = str(cfg.tta), str(cfg.split)
    checkpoint = output_anchor(cfg.ckpt_path)
    output = evaluation_output(cfg, checkpoint)
    reads = resolve(cfg.ckpt_path)
    check_evaluation_output(cfg, output, reads)
    predictor = load_predictor(cfg.ckpt_path)
    data_config, test_path = evaluation_data(cfg, predictor, checkpoint)
    # The run's own data files are known only now: the result must not replace them either.
    check_evaluation_output(cfg, output, reads, data_config)
    data = evaluation_images(data_config, test_path, split)
    device = resolve_device(cfg.get("device", "auto"))
    probabilities = predict_probabilities(predictor.module, data.images, int(cfg.batch_size), tta, data.transform,
                                          device=device)
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
    output.parent.mkdir(parents=True, exist_ok=True)
    write_text(output, json.dumps(result, indent=2) + "\n")
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
