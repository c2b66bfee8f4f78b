"""The evaluate command: a checkpoint or an ensemble scored on a labelled split (test, or val) or file,
its result written to eval.json (the scoring itself: scoring.py)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from fer_lightning.checkpoints import resolve
from fer_lightning.checkpoints.shipped import (
    is_pretrained,
    output_anchor,
    pretrained_entry,
)
from fer_lightning.config.checks import check_evaluate_config
from fer_lightning.errors import ConfigError, FerError
from fer_lightning.files import check_output, read_json_object, write_text
from fer_lightning.inference.scoring import (
    LabelledImages,
    classification_metrics,
    data_files,
    load_split,
    predict_probabilities,
    read_labelled_file,
    resolve_device,
)
from fer_lightning.runs.saved_run import RUN_CONFIG, run_data_config

if TYPE_CHECKING:
    from fer_lightning.checkpoints.predictor import Predictor

log = logging.getLogger(__name__)

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
    if cfg.get("calibrate", False):
        from fer_lightning.inference.calibration import calibration_report

        # Fitted on the network's own probabilities (temperature 1), whatever temperature it carries now.
        result["calibration"] = {"model_temperature": predictor.temperature,
                                 **calibration_report(probabilities, data.labels),
                                 # Drawn there by the command (the figures are not this layer's).
                                 "reliability_diagram": str(output.with_name(f"{output.stem}_reliability.png"))}
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
    if "calibration" in result:
        fit = result["calibration"]
        kept = "kept" if fit["temperature"] != 1.0 else "not kept (it did not lower the calibration error): 1.0"
        console().print(f"temperature {fit['fitted_temperature']:.3f} fitted on these {result['num_images']} faces, "
                        f"{kept}; expected calibration error {fit['ece_before']:.4f} -> {fit['ece_after']:.4f}, "
                        f"negative log-likelihood {fit['nll_before']:.4f} -> {fit['nll_after']:.4f}")
