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


def pooled_head(width: int, dropout: float | None, num_classes: int) -> nn.Sequential:
    """Global average pooling, dropout (if any) and one linear layer: the head of the modern networks."""
    head: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if dropout:
        head.append(nn.Dropout(float(dropout)))
    head.append(nn.Linear(width, num_classes))
    return nn.Sequential(*head)


class FeaturesThenHead(nn.Module):
    """A ``features`` Sequential, then a ``classifier`` Sequential; what the figures explain are the
    3x3 convolutions of the features (1x1 projections and pointwise convs mix channels only)."""

    features: nn.Sequential
    classifier: nn.Sequential

    def conv_layers(self) -> list[nn.Conv2d]:
        return [m for m in self.features.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]

    @property
    def last_conv(self) -> nn.Conv2d:
        return self.conv_layers()[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
