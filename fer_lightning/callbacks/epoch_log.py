"""One line per epoch in the run's log (train.log): how a background or SLURM run is followed
without a terminal, where the progress bar draws nothing."""

from __future__ import annotations

import logging
import time

import pytorch_lightning as pl

log = logging.getLogger(__name__)

# The logged metrics worth a place on the line, in this order.
KEYS = ("loss/train", "acc/train", "loss/val", "acc/val", "acc_macro/val")


class EpochLogCallback(pl.Callback):
    def __init__(self) -> None:
        self._started = 0.0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._started = time.monotonic()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Runs after validation (Lightning validates inside the training epoch), so both are here.
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics
        values = " ".join(f"{key} {float(metrics[key]):.4f}" for key in KEYS if key in metrics)
        best = getattr(pl_module, "best_val_acc", None)
        best_epoch = getattr(pl_module, "best_epoch", None)
        best_text = f" | best acc/val {best:.4f} at epoch {best_epoch}" if best_epoch is not None else ""
        last = trainer.max_epochs - 1 if trainer.max_epochs and trainer.max_epochs > 0 else None
        epoch = f"{trainer.current_epoch}/{last}" if last is not None else str(trainer.current_epoch)
        log.info("epoch %s: %s%s | %.1f s", epoch, values, best_text, time.monotonic() - self._started)
