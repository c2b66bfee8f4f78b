"""``trainer.memory_format``: the layout the network's weights and activations are kept in while it
trains. NHWC (channels_last) is what GPU tensor cores and oneDNN on CPUs read fastest for
convolutions (docs/benchmarks.md); the setting belongs to the hardware, so the trainer config
chooses it, and this callback applies it to whatever network is being trained."""

from __future__ import annotations

import pytorch_lightning as pl
import torch

from fer_lightning.config.choices import MEMORY_FORMATS

LAYOUTS = dict(zip(MEMORY_FORMATS, (torch.contiguous_format, torch.channels_last), strict=True))


class MemoryFormat(pl.Callback):
    def __init__(self, memory_format: str) -> None:
        self.layout = LAYOUTS[memory_format]

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # In every process (spawned DDP workers too), before the optimizer holds the parameters. A
        # convolution whose weights are NHWC returns NHWC activations, so the batches need no change.
        pl_module.to(memory_format=self.layout)
