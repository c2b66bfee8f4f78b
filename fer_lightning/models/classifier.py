"""LightningModule around a network of models/architectures.py (the report's CNN by default): loss,
metrics, optimizer and schedule from config.

Every constructor argument is a plain number, string, list or dict, so ``save_hyperparameters``
stores nothing that needs pickle: checkpoints load with ``torch.load(weights_only=True)``.
Optimizer and scheduler arrive as Hydra configs (``_partial_: true``) and are instantiated
only when training starts.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from torchmetrics.classification import MulticlassAccuracy

from fer_lightning.classes import CLASS_NAMES
from fer_lightning.config.checks import distill_settings
from fer_lightning.models.architectures import DEFAULT_ARCHITECTURE, build_network, net_config
from fer_lightning.models.batch_mixing import mix_batch
from fer_lightning.models.distillation import distillation_loss, teacher_probabilities
from fer_lightning.seeds import epoch_seed


def plain(value: Any) -> Any:
    """OmegaConf containers -> dicts and lists, so hyperparameters stay weights-only loadable."""
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def balanced_class_weights(class_counts: Sequence[int]) -> torch.Tensor:
    """Inverse-frequency weights normalised to mean 1 (absent classes get weight 0)."""
    counts = torch.as_tensor(list(class_counts), dtype=torch.float32)
    weights = torch.where(counts > 0, counts.sum() / (len(counts) * counts.clamp(min=1)), 0.0)
    return weights * (len(counts) / weights.sum())


class ExpressionClassifier(pl.LightningModule):
    def __init__(
        self,
        # {architecture, <that network's own arguments>} (models/architectures.py); {} is the report's CNN.
        net: dict | None = None,
        # The peak dropout rate, which every network takes (null: the network's own default).
        dropout: float | None = None,
        optimizer: dict | None = None,
        scheduler: dict | None = None,
        scheduler_interval: str = "epoch",
        scheduler_monitor: str = "acc/val",
        label_smoothing: float = 0.0,
        class_weights: str | Sequence[float] | None = None,
        mixing: str | None = None,
        mixing_alpha: float = 0.2,
        mixing_prob: float = 1.0,
        distill: dict | None = None,
        compile: bool = False,
        class_names: Sequence[str] = CLASS_NAMES,
        seed: int = 0,
    ) -> None:
        super().__init__()
        args = {k: plain(v) for k, v in locals().items() if k not in ("self", "__class__")}
        args["distill"] = distill_settings(args["distill"])
        args["net"] = net_config(args) or {"architecture": DEFAULT_ARCHITECTURE}
        self.save_hyperparameters(args)
        self._teacher: torch.nn.Module | None = None  # attach_teacher(); never saved with the student
        self.net = build_network(args, num_classes=len(class_names))
        # Filled in setup() when class_weights="balanced"; not persistent, so inference needs no data.
        self.register_buffer("class_weight", None, persistent=False)

        metrics = {}
        for stage in ("train", "val", "test"):
            metrics[f"{stage}_acc"] = MulticlassAccuracy(len(class_names), average="micro")
            metrics[f"{stage}_acc_macro"] = MulticlassAccuracy(len(class_names), average="macro")
        self.metrics = torch.nn.ModuleDict(metrics)
        self.best_val_acc = 0.0
        self.best_epoch: int | None = None

    # ----------------------------------------------------------------- set-up
    def setup(self, stage: str) -> None:
        weights = self.hparams.class_weights
        if weights is None:
            return
        if weights == "balanced":
            counts = getattr(self.trainer.datamodule, "class_counts", None)
            if counts is None:
                raise ValueError('class_weights="balanced" needs a data module with class_counts')
            self.class_weight = balanced_class_weights(counts)
        else:
            self.class_weight = torch.as_tensor(weights, dtype=torch.float32)

    def configure_model(self) -> None:
        if self.hparams.compile and not isinstance(self.net, torch._dynamo.eval_frame.OptimizedModule):
            self.net = torch.compile(self.net)

    # ---------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def attach_teacher(self, teacher: torch.nn.Module) -> None:
        """Learn from ``teacher`` (its ``softened(images, temperature)``) as model.distill says. It stays
        outside the module tree: not trained, not moved with the student, not in its checkpoints."""
        object.__setattr__(self, "_teacher", teacher.eval().requires_grad_(False))

    def with_teacher(self, hard: torch.Tensor, logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """The hard-label loss mixed with the distillation loss on ``images`` (the batch the logits came
        from, augmented and mixed as the student saw it) when a teacher is attached:
        (1 - weight) * hard + weight * T² KL(teacher_T ‖ student_T)."""
        if self._teacher is None:
            return hard
        settings = self.hparams.distill
        soft = distillation_loss(logits, teacher_probabilities(self._teacher, images, settings["temperature"]),
                                 settings["temperature"])
        self.log("loss/distill", soft, on_step=False, on_epoch=True, batch_size=len(images), sync_dist=True)
        return (1.0 - settings["weight"]) * hard + settings["weight"] * soft

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        weight = None if self.class_weight is None else self.class_weight.to(logits.device)
        return F.cross_entropy(
            logits.float(), target, weight=weight, label_smoothing=self.hparams.label_smoothing
        )

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        images, target = batch
        mixing = self.hparams.mixing
        if stage == "train" and mixing and float(torch.rand(())) < self.hparams.mixing_prob:
            mixed = mix_batch(images, target, mixing, self.hparams.mixing_alpha)
            seen = mixed.images
            logits = self(seen)
            loss = mixed.lam * self.loss(logits, target) + (1.0 - mixed.lam) * self.loss(logits, mixed.partner_target)
            # Training accuracy is then scored against each image's own label, the one it was mixed into.
        else:
            seen = images
            logits = self(images)
            loss = self.loss(logits, target)
        if stage == "train":
            loss = self.with_teacher(loss, logits, seen)
        if not torch.isfinite(loss):
            # Stop before broken weights reach a checkpoint; the run is marked failed.
            raise FloatingPointError(
                f"{stage} loss is {loss.item()} at epoch {self.current_epoch}, step {self.global_step}: "
                "lower the learning rate or check the data"
            )
        preds = logits.argmax(dim=1)
        self.metrics[f"{stage}_acc"](preds, target)
        self.metrics[f"{stage}_acc_macro"](preds, target)
        on_step = stage == "train"
        # sync_dist: under DDP the epoch loss is averaged over every process's shard, as the metrics are.
        self.log(f"loss/{stage}", loss, on_step=False, on_epoch=True, prog_bar=on_step, batch_size=len(target),
                 sync_dist=True)
        self.log(f"acc/{stage}", self.metrics[f"{stage}_acc"], on_step=False, on_epoch=True,
                 prog_bar=stage == "val", batch_size=len(target))
        self.log(f"acc_macro/{stage}", self.metrics[f"{stage}_acc_macro"], on_step=False, on_epoch=True,
                 batch_size=len(target))
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def on_train_epoch_start(self) -> None:
        # Dropout draws depend on (seed, epoch) only, so a resumed epoch repeats exactly.
        torch.manual_seed(epoch_seed(self.hparams.seed, self.current_epoch) + 1)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        value = self.trainer.callback_metrics.get("acc/val")
        if value is not None:
            if float(value) > self.best_val_acc or self.best_epoch is None:
                self.best_val_acc, self.best_epoch = float(value), self.current_epoch
            # The metric TensorBoard's HPARAMS tab compares across the runs of a sweep.
            self.log("hp/best_val_acc", self.best_val_acc, sync_dist=True)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["best_val_acc"] = self.best_val_acc
        checkpoint["best_epoch"] = self.best_epoch
        checkpoint["fer_lightning"] = {"kind": "model", "format": 1}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.best_val_acc = float(checkpoint.get("best_val_acc", 0.0))
        self.best_epoch = checkpoint.get("best_epoch")

    # -------------------------------------------------------------- optimizer
    def configure_optimizers(self):
        config = self.hparams.optimizer or {"_target_": "torch.optim.AdamW", "_partial_": True, "lr": 1e-3}
        optimizer = instantiate(config)(params=self.parameters())
        if not self.hparams.scheduler:
            return optimizer
        make_scheduler = instantiate(self.hparams.scheduler)
        kwargs = {}
        target = getattr(make_scheduler, "func", make_scheduler)
        if "total_steps" in inspect.signature(target).parameters:
            kwargs["total_steps"] = int(self.trainer.estimated_stepping_batches)
        scheduler = make_scheduler(optimizer, **kwargs)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": scheduler,
                "interval": self.hparams.scheduler_interval,
                "monitor": self.hparams.scheduler_monitor,
            },
        }
