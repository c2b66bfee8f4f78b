"""What the experiment trackers (MLflow, Weights & Biases) get beyond Lightning's per-epoch metrics:
the whole resolved config as parameters, the run's tags and where it lives, and at the end its
metrics.json, provenance.json and saved config as files beside the figures the callbacks send."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def flat_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as ``{"model.net.channels": "[8, 16, ...]", ...}`` (hydra's own node left out)."""
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        else:
            flat[prefix[:-1]] = node if isinstance(node, (int, float, str, bool)) or node is None else str(node)

    walk({k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k != "hydra"}, "")
    return flat


def is_mlflow(logger: Any) -> bool:
    return type(logger).__name__ == "MLFlowLogger"


def is_wandb(logger: Any) -> bool:
    return type(logger).__name__ == "WandbLogger"


def describe_run(loggers: list[Any], cfg: DictConfig, run_dir: Path, sweep_dir: Path | None) -> None:
    """Parameters and tags for the trackers; TensorBoard and CSV keep the short set of hyperparameters."""
    trackers = [logger for logger in loggers if is_mlflow(logger) or is_wandb(logger)]
    if not trackers:
        return
    params = flat_config(cfg)
    tags = {"fer.tags": ",".join(str(tag) for tag in cfg.get("tags") or []), "fer.run_dir": str(run_dir)}
    if sweep_dir is not None:
        tags["fer.sweep"] = str(sweep_dir)  # every job of a sweep carries it: one filter finds them all
    for logger in trackers:
        logger.log_hyperparams(params)
        if is_mlflow(logger):
            for key, value in tags.items():
                logger.experiment.set_tag(logger.run_id, key, value)
        else:
            logger.experiment.tags = tuple(str(tag) for tag in cfg.get("tags") or [])
            logger.experiment.config.update({"fer": tags}, allow_val_change=True)


def store_files(loggers: list[Any], files: dict[str, list[Path]]) -> None:
    """The run's own files as artifacts after it ended, by folder (each file that exists)."""
    for logger in loggers:
        for folder, paths in files.items():
            for path in (path for path in paths if path.is_file()):
                if is_mlflow(logger):
                    logger.experiment.log_artifact(logger.run_id, str(path), artifact_path=folder)
                elif is_wandb(logger):  # files in the run's files/ folder are kept (and uploaded by a sync)
                    target = Path(logger.experiment.dir) / folder / path.name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, target)
