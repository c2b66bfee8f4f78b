"""TensorBoard charts that put train and validation of one quantity together, as the report does."""

from __future__ import annotations

import re

import pytorch_lightning as pl
from pytorch_lightning.loggers import TensorBoardLogger

from fer_lightning.viz.figures import HISTORY_CHARTS

CATEGORY = "train vs val"


def charts_layout(charts: dict[str, tuple[str, ...]] = HISTORY_CHARTS) -> dict[str, dict[str, list]]:
    """The custom-scalars layout: one multi-line chart per quantity.

    TensorBoard reads each tag as a regular expression: anchored and escaped, so that acc/val does
    not also pull in acc_macro/val or a tag that merely starts the same.
    """
    return {CATEGORY: {chart: ["Multiline", [f"^{re.escape(tag)}$" for tag in tags]]
                       for chart, tags in charts.items()}}


class TrainValChartsCallback(pl.Callback):
    """Writes the layout once when training starts (TensorBoard's CUSTOM SCALARS tab); the separate
    per-tag charts stay where they were."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_custom_scalars(charts_layout())
