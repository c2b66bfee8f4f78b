"""A run directory as later commands read it: its saved config, its data settings, its checkpoints.

A run directory may come from someone else, so what it holds is data: its config is loaded, never
instantiated, and its checkpoints are the ones inside it, wherever metrics.json says they were written.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from fer_lightning.data.settings import data_settings
from fer_lightning.errors import CheckpointError, ConfigError, FerError
from fer_lightning.runs.directory import RunDirectory

log = logging.getLogger(__name__)

RUN_CONFIG = Path(".hydra") / "config.yaml"
FINISHED = ("completed", "interrupted")
CHECKPOINTS = ("best", "last")


def load_run_config(run_dir: str | Path) -> DictConfig:
    """The run's saved training config, with ``paths.output_dir`` pinned to ``run_dir``.

    Saved configs keep ``${hydra:...}`` interpolations that only that run's live Hydra job could
    resolve; pinned, nothing depends on Hydra being active.
    """
    from fer_lightning.config.resolvers import register_resolvers

    register_resolvers()
    path = Path(run_dir) / RUN_CONFIG
    try:
        config = OmegaConf.load(path)
    except (OmegaConfBaseException, ValueError, OSError, yaml.YAMLError) as error:  # a python tag: refused, never built
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"{path}: cannot be read ({first})") from None
    if not isinstance(config, DictConfig) or "data" not in config:
        raise FerError(f"{path}: not a training config of this project (no data section)")
    with open_dict(config):
        if "paths" in config:
            config.paths.output_dir = str(Path(run_dir).resolve())
    return config


def run_checkpoint(run_dir: str | Path, which: str) -> Path:
    """``checkpoints/<best|last>.ckpt`` inside the run directory given (a copied run uses its own)."""
    path = Path(run_dir) / "checkpoints" / f"{which}.ckpt"
    if not path.is_file():
        raise CheckpointError(f"{run_dir}: no {which} checkpoint (looked for {path})")
    return path


def run_data_config(run_dir: str | Path) -> dict[str, Any]:
    """The data settings a run trained on, resolved to plain values and checked (they never name code)."""
    path = Path(run_dir) / RUN_CONFIG
    if not path.is_file():
        raise ConfigError(f"{path}: no such file, so the run's data is unknown")
    cfg = load_run_config(run_dir)
    try:
        data = OmegaConf.to_container(cfg.data, resolve=True)
    except (OmegaConfBaseException, ValueError, KeyError, AttributeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"{path}: cannot read its data config ({first})") from None
    if not isinstance(data, dict) or "_target_" not in data:
        raise ConfigError(f"{path}: holds no data config")
    return data_settings(data, where=str(path))


@dataclass
class FinishedRun:
    path: Path
    config: DictConfig
    config_text: str
    metrics: dict[str, Any]

    def checkpoint(self, which: str) -> Path:
        """``best``/``last`` (inside this run directory) or a checkpoint file's path."""
        if which not in CHECKPOINTS:
            path = Path(which).expanduser()
            if not path.is_file():
                raise CheckpointError(f"checkpoint={which}: no such checkpoint file")
            return path
        return run_checkpoint(self.path, which)


def open_finished_run(run_dir: str | Path) -> FinishedRun:
    """The run at ``run_dir``, or a FerError saying in one line why it is not a finished run."""
    path = Path(run_dir).expanduser()
    if not path.is_dir():
        raise FerError(f"run_dir={run_dir}: no such directory")
    config_file = path / RUN_CONFIG
    if not config_file.is_file():
        inner = sorted(p.parent.parent for p in path.glob("**/.hydra/config.yaml"))
        hint = f"; runs below it include {inner[0]}" if inner else ""
        raise FerError(f"run_dir={run_dir}: not a run directory (no .hydra/config.yaml){hint}")
    metrics = RunDirectory(path).read_metrics()
    status = metrics.get("status", "new")
    if status not in FINISHED:
        why = {
            "new": "has not trained yet (no metrics.json)",
            "running": "is still running, or was killed: run its training command again to finish it",
            "failed": f"failed ({metrics.get('error') or 'see train.log'})",
        }.get(status, f"has status {status!r}")
        raise FerError(f"run_dir={run_dir}: not a finished run, it {why}")
    config = load_run_config(path)
    return FinishedRun(path=path, config=config, config_text=config_file.read_text(), metrics=metrics)


HISTORY_TAGS = ("acc/train", "acc/val", "loss/train", "loss/val")


def read_history(log_dir: Path, tags: Sequence[str] = HISTORY_TAGS) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(epoch, value)] from the TensorBoard event files in ``log_dir`` (a resumed run's too)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logging.getLogger("tensorboard").setLevel(logging.WARNING)  # one line per event file otherwise

    if not log_dir.is_dir() or not any(log_dir.glob("events.out.tfevents.*")):
        return {}
    accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    present = set(accumulator.Tags().get("scalars", []))
    # Lightning logs the epoch beside every metric: it maps a step to its epoch.
    epoch_at = {e.step: int(e.value) for e in accumulator.Scalars("epoch")} if "epoch" in present else {}
    history = {}
    for tag in tags:
        if tag in present:
            by_epoch = {epoch_at.get(e.step, i): e.value for i, e in enumerate(accumulator.Scalars(tag))}
            history[tag] = sorted(by_epoch.items())  # a resumed epoch keeps its last value
    return history


# The line callbacks/epoch_log.py writes into train.log once per epoch (a few hundred characters).
MAX_LOG_LINE = 4096
MAX_LOG_CHARACTERS = 256 * 2**20
EPOCH_LINE = re.compile(r"epoch (?P<epoch>\d+)(?:/\d+)?: (?P<values>.*?) \| (?:best .*? \| )?(?P<seconds>\d+(?:\.\d+)?) s$")


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    seconds: float  # this epoch's training and validation time
    values: dict[str, float]  # loss/train, acc/train, loss/val, acc/val, ...


def read_epoch_log(run_dir: str | Path) -> list[EpochRecord]:
    """Every epoch line of the run's train.log, in order; a resumed epoch keeps its last line."""
    path = Path(run_dir) / "train.log"
    if not path.is_file():
        raise FerError(f"{run_dir}: no train.log, so no epoch times")
    epochs: dict[int, EpochRecord] = {}
    with path.open(encoding="utf-8", errors="replace") as handle:
        # Line by line, each cut at a length no epoch line has, and no further than MAX_LOG_CHARACTERS:
        # a damaged or endless log costs neither memory nor minutes.
        read = 0
        for line in iter(lambda: handle.readline(MAX_LOG_LINE), ""):
            read += len(line)
            if read > MAX_LOG_CHARACTERS:
                log.warning("%s: longer than %d MB; epochs after that point are left out", path,
                            MAX_LOG_CHARACTERS // 2**20)
                break
            found = EPOCH_LINE.search(line.rstrip("\n"))
            if not found:
                continue
            words = found["values"].split()
            try:
                values = {key: float(value) for key, value in zip(words[::2], words[1::2])}
            except ValueError:
                raise FerError(f"{path}: epoch {found['epoch']}'s line holds a value that is no number") from None
            epochs[int(found["epoch"])] = EpochRecord(int(found["epoch"]), float(found["seconds"]), values)
    return [epochs[epoch] for epoch in sorted(epochs)]
