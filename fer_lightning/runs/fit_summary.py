"""What a finished fit reports (best validation accuracy, its epoch, epochs trained, training time),
from any strategy.

With a spawning strategy (trainer=ddp_cpu: ``ddp_spawn``) the fit runs in child processes, and
Lightning brings back to the launching process only the weights, the trainer's state and
``trainer.callback_metrics``; the model's own attributes and the epoch counter stay in the children.
``FitSummary`` copies them into ``callback_metrics`` at the end of the fit, so they travel back too.
It also keeps the seconds spent fitting in every checkpoint, so a run killed and resumed from
last.ckpt reports the time of all its epochs, not only of its last stretch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl
import torch

PREFIX = "fit_summary/"


@dataclass(frozen=True)
class FitResult:
    best_val_acc: float
    best_epoch: int | None
    epochs_completed: int
    train_seconds: float | None = None


def completed_epochs(trainer: pl.Trainer) -> int:
    """Whole epochs trained. Lightning counts an epoch that ``max_time`` or ``max_steps`` cut short
    as done (``current_epoch`` moves on); here it does not count."""
    epochs = int(trainer.current_epoch)
    batches_done = trainer.fit_loop.epoch_loop.batch_progress.current.completed
    batches_per_epoch = trainer.num_training_batches
    if epochs > 0 and isinstance(batches_per_epoch, int) and 0 < batches_done < batches_per_epoch:
        epochs -= 1
    return epochs


class FitSummary(pl.Callback):
    """Puts the fit's results into ``trainer.callback_metrics`` (what spawned processes hand back)."""

    def __init__(self) -> None:
        self._earlier_seconds = 0.0  # fitting time of the run's earlier processes, from the checkpoint resumed
        self._started: float | None = None

    def train_seconds(self) -> float:
        now = time.perf_counter()
        return self._earlier_seconds + (now - self._started if self._started is not None else 0.0)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._started = time.perf_counter()

    def state_dict(self) -> dict[str, Any]:
        return {"train_seconds": self.train_seconds()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        seconds = state_dict.get("train_seconds")
        self._earlier_seconds = float(seconds) if isinstance(seconds, (int, float)) and seconds >= 0 else 0.0

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        best_epoch = getattr(pl_module, "best_epoch", None)
        trainer.callback_metrics.update({
            f"{PREFIX}best_val_acc": torch.tensor(float(getattr(pl_module, "best_val_acc", 0.0)), dtype=torch.float64),
            f"{PREFIX}best_epoch": torch.tensor(-1 if best_epoch is None else int(best_epoch)),
            f"{PREFIX}epochs_completed": torch.tensor(completed_epochs(trainer)),
            f"{PREFIX}train_seconds": torch.tensor(self.train_seconds(), dtype=torch.float64),
        })


def fit_result(trainer: pl.Trainer, model: pl.LightningModule) -> FitResult:
    """The results FitSummary recorded; the model's and trainer's own values when it did not run."""
    metrics = trainer.callback_metrics
    if f"{PREFIX}epochs_completed" not in metrics:
        return FitResult(float(model.best_val_acc), model.best_epoch, completed_epochs(trainer))
    best_epoch = int(metrics[f"{PREFIX}best_epoch"])
    return FitResult(
        best_val_acc=float(metrics[f"{PREFIX}best_val_acc"]),
        best_epoch=None if best_epoch < 0 else best_epoch,
        epochs_completed=int(metrics[f"{PREFIX}epochs_completed"]),
        train_seconds=float(metrics[f"{PREFIX}train_seconds"]) if f"{PREFIX}train_seconds" in metrics else None,
    )
