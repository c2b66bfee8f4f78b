"""A depthwise-separable network for 48x48 faces, after mini-Xception (Arriaga et al., 2017).

Depthwise 3x3 + pointwise 1x1 convolutions cost a fraction of a full 3x3 conv, so it is the
smallest and cheapest of the model options; residual modules halve the map at each stage.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from fer_lightning.classes import NUM_CLASSES
from fer_lightning.models.blocks import FeaturesThenHead, Residual, pooled_head


def separable_conv(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False),
        nn.Conv2d(in_channels, out_channels, 1, bias=False),
        nn.BatchNorm2d(out_channels),
    ]


def separable_module(in_channels: int, out_channels: int) -> Residual:
    """Two separable convs and a stride-2 max-pool, added to a strided 1x1 projection of the input."""
    body = nn.Sequential(
        *separable_conv(in_channels, out_channels),
        nn.ReLU(inplace=True),
        *separable_conv(out_channels, out_channels),
        nn.MaxPool2d(3, stride=2, padding=1),
    )
    shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=2, bias=False), nn.BatchNorm2d(out_channels))
    return Residual(body, shortcut)


class SeparableCNN(FeaturesThenHead):
    """Two plain 3x3 stem convs, one separable module per entry of ``channels``, then global
    average pooling, dropout and one linear layer.

    Input: ``(N, 1, 48, 48)`` floats in [0, 1]. Output: ``(N, num_classes)`` logits.
    """

    def __init__(
        self,
        channels: Sequence[int] = (32, 64, 128, 256),
        stem: int = 16,
        dropout: float | None = 0.2,
        num_classes: int = NUM_CLASSES,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous = in_channels
        for _ in range(2):
            layers += [nn.Conv2d(previous, stem, 3, padding=1, bias=False), nn.BatchNorm2d(stem), nn.ReLU(inplace=True)]
            previous = stem
        for width in channels:
            layers.append(separable_module(previous, width))
            previous = width
        self.features = nn.Sequential(*layers)
        self.classifier = pooled_head(previous, dropout, num_classes)
