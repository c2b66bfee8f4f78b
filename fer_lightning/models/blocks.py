"""Building blocks shared by the networks: a residual sum whose two branches are Sequentials,
so that the layer table (viz/model_table.py) can follow both without running the model."""

from __future__ import annotations

import torch
from torch import nn


class Residual(nn.Module):
    """``body(x) + shortcut(x)``; an empty ``shortcut`` is the identity."""

    def __init__(self, body: nn.Sequential, shortcut: nn.Sequential | None = None) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut if shortcut is not None else nn.Sequential()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)
