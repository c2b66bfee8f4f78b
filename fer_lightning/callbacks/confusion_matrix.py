"""The validation confusion matrix in TensorBoard, with the most confused pairs as text."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.hooks import RemovableHandle
from torchmetrics.classification import MulticlassConfusionMatrix

from fer_lightning.callbacks.base import FigureCallback, class_names


class ConfusionMatrixCallback(FigureCallback):
    """Accumulates (true, predicted) counts over a validation epoch; logs the row-normalised matrix.

    The logits come from a forward hook on the module during validation, so the matrix costs an
    argmax per batch and never a second forward pass.
    """

    def __init__(
        self,
        every_n_epochs: int | None = 1,
        top_pairs: int = 3,
        tag: str = "figures/confusion_matrix",
        pairs_tag: str = "figures/confused_pairs",
    ) -> None:
        super().__init__(every_n_epochs, at_end=False, name="confusion_matrix")
        self.top_pairs = int(top_pairs)
        self.tag = tag
        self.pairs_tag = pairs_tag
        self.metric: MulticlassConfusionMatrix | None = None
        self._hook: RemovableHandle | None = None
        self._logits: torch.Tensor | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.class_names = class_names(pl_module)
        self.metric = MulticlassConfusionMatrix(num_classes=len(self.class_names))

    def _keep_logits(self, module: torch.nn.Module, inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor):
            self._logits = output.detach()

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.due_after_validation(trainer) or self.metric is None:
            return
        self.metric.reset()
        self.metric.to(pl_module.device)
        # Hook the network, not the LightningModule: under DDP, Lightning routes validation_step
        # through the module's forward, whose hook would then see the step's output (None).
        self._hook = getattr(pl_module, "net", pl_module).register_forward_hook(self._keep_logits)

    def on_validation_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
        batch_idx: int, dataloader_idx: int = 0,
    ) -> None:
        if self._hook is None or self._logits is None:
            return
        with self.timed():
            target = batch[1].to(self._logits.device)
            labelled = target >= 0  # unlabelled items carry -1
            self.metric.update(self._logits.argmax(dim=1)[labelled], target[labelled])
            self._logits = None

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._hook is None:
            return
        self._hook.remove()
        self._hook = None
        if not self.metric.update_called:  # no labelled batch this epoch
            return
        with self.timed():
            counts = self.metric.compute().cpu().numpy()  # every rank: the counts are summed across them
            if trainer.is_global_zero:
                self.log_matrix(trainer, counts)
            self.mark_drawn(trainer)

    def log_matrix(self, trainer: pl.Trainer, counts: Any) -> None:
        from fer_lightning.viz.figures import confused_pairs, confusion_matrix_figure

        epoch = trainer.current_epoch
        title = f"validation, epoch {epoch} (accuracy {counts.trace() / max(counts.sum(), 1):.1%})"
        self.log_figure(trainer, self.tag, confusion_matrix_figure(counts, self.class_names, title))
        pairs = confused_pairs(counts, self.class_names, self.top_pairs)
        if pairs:
            self.log_text(trainer, self.pairs_tag, "\n".join(f"- {pair.sentence()}" for pair in pairs))

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
