"""The measured work: the project's training path (Hydra config -> data module, model, Lightning
Trainer) and the plain PyTorch loop a user would otherwise write, plus the faces they both eat."""

from __future__ import annotations

import logging
import os
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from fer_lightning.config.compose import bind_run, compose_config
from fer_lightning.config.resolvers import register_resolvers
from fer_lightning.data.datamodule import Split
from fer_lightning.models.architectures import build_network
from fer_lightning.runs.memory_format import MemoryFormat
from fer_lightning.runs.training import trainer_arguments

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
register_resolvers()

# What every project-side measurement switches off: no figures, no progress bar, no logger, no
# checkpoints, no test pass. Training itself runs exactly as `python -m fer_lightning.train` runs it,
# except that the layout is pinned to NCHW: the plain loop's layout, and the reference that figure 2's
# channels-last row (trainer=cpu's default) is measured against.
QUIET_OVERRIDES = ("callbacks=none", "logger=none", "print_config=false", "test=false",
                   "trainer/memory_format=contiguous")


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Lightning's info lines and hints would bury the tables; levels are restored afterwards."""
    loggers = [logging.getLogger(name) for name in ("pytorch_lightning", "lightning_fabric", "lightning")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        for message in (".*does not have many workers.*", ".*GPU available but not used.*", ".*LeafSpec.*",
                        ".*number of training batches.*", ".*precision.*is not supported.*"):
            warnings.filterwarnings("ignore", message=message)
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)


# ------------------------------------------------------------------------------------ data
@lru_cache(maxsize=4)
def unique_faces(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from fer_lightning.data.synthetic import generate_synthetic_faces

    faces = generate_synthetic_faces(count, seed=seed)
    return faces.images, faces.labels


def faces(count: int, unique: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` synthetic faces: ``unique`` distinct ones, repeated. Speed does not depend on
    which face is which, and generating FER2013's 28,709 faces would cost a minute."""
    images, labels = unique_faces(min(count, unique), seed)
    reps = -(-count // len(images))
    return np.tile(images, (reps, 1, 1))[:count], np.tile(labels, reps)[:count]


# --------------------------------------------------------------------------------- config
def compose_train_config(overrides: Sequence[str] = (), output_dir: Path | None = None) -> DictConfig:
    """The training config exactly as the command line composes it, bound to a scratch run dir."""
    cfg = compose_config(overrides, with_hydra=True)
    return bind_run(cfg, output_dir or Path(tempfile.mkdtemp(prefix="fer-bench-")), job_id="bench")


def net_from_config(model_cfg: DictConfig) -> torch.nn.Module:
    return build_network(OmegaConf.to_container(model_cfg, resolve=True))


def flops_per_image(net: torch.nn.Module, train: bool, batch: int = 2) -> float:
    """FLOPs (a multiply-add counts 2) of one image: forward, or forward + backward when training."""
    from torch.utils.flop_counter import FlopCounterMode

    net.train(train)
    images = torch.rand(batch, 1, 48, 48)
    with FlopCounterMode(display=False) as counter:
        if train:
            F.cross_entropy(net(images), torch.zeros(batch, dtype=torch.long)).backward()
        else:
            with torch.no_grad():
                net(images)
    net.zero_grad(set_to_none=True)
    return counter.get_total_flops() / batch


# ------------------------------------------------------------------------------- timings
@dataclass
class FitTiming:
    """Per-step wall times of one measured run; the rate covers the steps after warm-up, with
    the data fetching between them (start of the first measured step to end of the last)."""

    batch_size: int
    warmup: int
    starts: list[float] = field(default_factory=list)
    ends: list[float] = field(default_factory=list)
    val_seconds: list[float] = field(default_factory=list)

    @property
    def measured_steps(self) -> int:
        return len(self.ends) - self.warmup

    @property
    def seconds(self) -> float:
        if self.measured_steps <= 0:
            return float("nan")
        return self.ends[-1] - self.starts[self.warmup]

    @property
    def seconds_per_step(self) -> float:
        return self.seconds / self.measured_steps if self.measured_steps > 0 else float("nan")

    @property
    def images_per_second(self) -> float:
        return self.batch_size / self.seconds_per_step

    @property
    def first_step_seconds(self) -> float:
        return self.ends[0] - self.starts[0] if self.ends else float("nan")


class StepTimer(pl.Callback):
    """Wall-clock time of each training batch (and validation batch) as Lightning runs it."""

    def __init__(self, timing: FitTiming) -> None:
        self.timing = timing
        self._val_start = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.timing.starts.append(time.perf_counter())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.timing.ends.append(time.perf_counter())

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self._val_start = time.perf_counter()

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self.timing.val_seconds.append(time.perf_counter() - self._val_start)


def project_fit(
    overrides: Sequence[str],
    images: np.ndarray,
    labels: np.ndarray,
    warmup: int,
    steps: int,
    val: tuple[np.ndarray, np.ndarray] | None = None,
    val_batches: int = 0,
) -> FitTiming:
    """Train ``warmup + steps`` batches through the project's path and time each batch.

    The config is composed like the command line, the data module, model and trainer are built
    from it as ``fer_lightning.runs.training`` builds them; only the trainer is told to stop
    after the measured batches and to skip sanity checks, checkpoints and the model summary.
    The images are handed to the data module (its ``splits``) instead of being generated again.
    """
    with quiet_lightning(), tempfile.TemporaryDirectory(prefix="fer-bench-") as scratch:
        cfg = compose_train_config([*QUIET_OVERRIDES, f"paths.log_dir={scratch}", *overrides], Path(scratch) / "run")
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
        datamodule = instantiate(cfg.data)
        val_images, val_labels = val if val is not None else (images[:64], labels[:64])
        datamodule.splits = {"train": Split(images, labels), "val": Split(val_images, val_labels)}
        model = instantiate(cfg.model)
        timing = FitTiming(batch_size=int(cfg.data.batch_size), warmup=warmup)
        trainer = instantiate(
            trainer_arguments(cfg.trainer), logger=False,
            callbacks=[StepTimer(timing), MemoryFormat(cfg.trainer.get("memory_format", "contiguous"))], max_epochs=1, min_epochs=1, max_steps=-1,
            limit_train_batches=warmup + steps, limit_val_batches=val_batches, num_sanity_val_steps=0,
            enable_checkpointing=False, enable_model_summary=False, enable_progress_bar=False,
            default_root_dir=scratch,
        )
        trainer.fit(model, datamodule=datamodule)
    GlobalHydra.instance().clear()
    return timing


def plain_loop(
    cfg: DictConfig,
    images: np.ndarray,
    labels: np.ndarray,
    warmup: int,
    steps: int,
) -> FitTiming:
    """The hand-written loop: same network, batch size, optimizer settings and precision, the
    whole training set as one float tensor in memory, a shuffled index sliced per batch."""
    torch.manual_seed(int(cfg.seed))
    net = net_from_config(cfg.model).train()
    optimizer_cfg: dict[str, Any] = OmegaConf.to_container(cfg.model.optimizer, resolve=True)
    optimizer = torch.optim.AdamW(net.parameters(), lr=optimizer_cfg["lr"],
                                  weight_decay=optimizer_cfg.get("weight_decay", 0.01))
    inputs = torch.from_numpy(images).float().div_(255.0).unsqueeze(1)
    targets = torch.from_numpy(labels).long()
    batch_size = int(cfg.data.batch_size)
    order = torch.randperm(len(inputs))
    timing = FitTiming(batch_size=batch_size, warmup=warmup)
    for step in range(warmup + steps):
        index = order[step * batch_size:(step + 1) * batch_size]
        timing.starts.append(time.perf_counter())
        x, y = inputs[index], targets[index]
        loss = F.cross_entropy(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        timing.ends.append(time.perf_counter())
    return timing

