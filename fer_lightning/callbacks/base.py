"""What the figure callbacks share: when to draw, where the picture goes, what it cost."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytorch_lightning as pl
from pytorch_lightning.loggers import TensorBoardLogger

from fer_lightning.classes import CLASS_NAMES
from fer_lightning.errors import ConfigError
from fer_lightning.viz.figures import figure_to_array

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)


def check_every_n_epochs(value: int | None, key: str) -> int | None:
    """None (or 0) switches periodic drawing off; otherwise a whole number of epochs >= 1."""
    if value in (None, 0):
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{key}={value!r} is not allowed: null or a whole number of epochs >= 1")
    return value


def class_names(pl_module: pl.LightningModule) -> list[str]:
    names = (getattr(pl_module, "hparams", None) or {}).get("class_names")
    return list(names) if names else list(CLASS_NAMES)


def validation_dataset(trainer: pl.Trainer) -> Any | None:
    """The dataset the validation loop reads (its eval transform applied), or None without one."""
    loaders = trainer.val_dataloaders
    if isinstance(loaders, (list, tuple)):
        loaders = loaders[0] if loaders else None
    if loaders is None and trainer.datamodule is not None and hasattr(trainer.datamodule, "val_dataloader"):
        loaders = trainer.datamodule.val_dataloader()
    return getattr(loaders, "dataset", None)


# The loggers a figure goes to: TensorBoard as an image, MLflow as a PNG artifact, W&B as an image.
FIGURE_LOGGERS = ("TensorBoardLogger", "MLFlowLogger", "WandbLogger")


class FigureCallback(pl.Callback):
    """Draws figures into TensorBoard (and MLflow, W&B) every ``every_n_epochs`` validation epochs
    and/or at the end.

    Only a run with one of those loggers pays for drawing. Work happens on global rank 0 unless a
    subclass needs every rank (a metric synchronised across processes).
    """

    def __init__(self, every_n_epochs: int | None, at_end: bool, name: str) -> None:
        super().__init__()
        self.every_n_epochs = check_every_n_epochs(every_n_epochs, f"callbacks.{name}.every_n_epochs")
        self.at_end = bool(at_end)
        self.name = name
        self.seconds = 0.0  # time spent drawing, reported at the end of fit
        self._drawn_at_step: int | None = None

    # ---------------------------------------------------------------- when
    @staticmethod
    def has_figure_logger(trainer: pl.Trainer) -> bool:
        """Has the run a logger that shows figures (TensorBoard, or a tracker)?"""
        return any(type(logger).__name__ in FIGURE_LOGGERS for logger in trainer.loggers)

    def due_after_validation(self, trainer: pl.Trainer) -> bool:
        """Is this validation epoch one to draw at?"""
        if trainer.sanity_checking or self.every_n_epochs is None or not self.has_figure_logger(trainer):
            return False
        return (trainer.current_epoch + 1) % self.every_n_epochs == 0

    def due_at_end(self, trainer: pl.Trainer) -> bool:
        """At the end, unless the last validation already drew this very state of the network."""
        return self.at_end and self.has_figure_logger(trainer) and self._drawn_at_step != trainer.global_step

    def mark_drawn(self, trainer: pl.Trainer) -> None:
        self._drawn_at_step = trainer.global_step

    # ---------------------------------------------------------------- what
    def draw(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Compute and log this callback's figures (subclasses)."""
        raise NotImplementedError

    def _draw(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        import torch

        # A figure's few images are too small a batch to share between threads: on a busy 2-core
        # machine two threads drew the filter pictures 7 times slower than one (21 s against 3 s).
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with self.timed():
                self.draw(trainer, pl_module)
        finally:
            torch.set_num_threads(threads)
        self.mark_drawn(trainer)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero and self.due_after_validation(trainer):
            self._draw(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero and self.due_at_end(trainer):
            self._draw(trainer, pl_module)

    # --------------------------------------------------------------- where
    def log_figure(self, trainer: pl.Trainer, tag: str, figure: Figure) -> None:
        pixels = figure_to_array(figure)
        step = trainer.global_step
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(tag, pixels, step, dataformats="HWC")
            elif type(logger).__name__ == "MLFlowLogger":
                logger.experiment.log_image(logger.run_id, pixels, artifact_file=f"{tag}/step-{step:07d}.png")
            elif type(logger).__name__ == "WandbLogger":
                logger.log_image(key=tag, images=[pixels], step=step)

    def log_text(self, trainer: pl.Trainer, tag: str, text: str) -> None:
        step = trainer.global_step
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_text(tag, text, step)
            elif type(logger).__name__ == "MLFlowLogger":
                logger.experiment.log_text(logger.run_id, text, artifact_file=f"{tag}/step-{step:07d}.txt")

    # ---------------------------------------------------------------- cost
    @contextmanager
    def timed(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - started

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.seconds > 0 and trainer.is_global_zero:
            log.info("figures: %s took %.2f s", self.name, self.seconds)
