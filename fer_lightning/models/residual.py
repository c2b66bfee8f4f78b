"""A small residual network for 48x48 faces (ResNet basic blocks, global average pooling).

Skip connections and a light head let it learn more per epoch than a plain stack of the same cost;
the widths and block counts are arguments so that the config group can size it.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from fer_lightning.classes import NUM_CLASSES
from fer_lightning.models.blocks import FeaturesThenHead, Residual, pooled_head


def basic_block(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """Two 3x3 convs with BN, added to the input (projected by a 1x1 conv when the shape changes)."""
    body = nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
    )
    # Each block starts as the identity (last BN scale 0): the usual trick that lets a residual net train fast.
    nn.init.zeros_(body[-1].weight)
    shortcut = None
    if stride != 1 or in_channels != out_channels:
        shortcut = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
        )
    return nn.Sequential(Residual(body, shortcut), nn.ReLU(inplace=True))


class ResidualCNN(FeaturesThenHead):
    """Stem conv, then one stage per entry of ``channels`` (each but the first halves the map),
    global average pooling, dropout and one linear layer.

    Input: ``(N, 1, 48, 48)`` floats in [0, 1]. Output: ``(N, num_classes)`` logits.
    """

    # The constructor arguments a model config and a checkpoint's hyperparameters give it.
    def __init__(
        self,
        channels: Sequence[int] = (32, 64, 128, 256),
        blocks: Sequence[int] = (1, 1, 1, 1),
        dropout: float | None = 0.2,
        num_classes: int = NUM_CLASSES,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        channels, blocks = list(channels), list(blocks)
        if len(blocks) != len(channels):
            raise ValueError(f"blocks needs one count per stage ({len(channels)}), got {len(blocks)}")
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, channels[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(channels[0]),
            nn.ReLU(inplace=True),
        ]
        previous = channels[0]
        for stage, (width, count) in enumerate(zip(channels, blocks)):
            for index in range(count):
                stride = 2 if stage > 0 and index == 0 else 1
                layers.append(basic_block(previous, width, stride))
                previous = width
        self.features = nn.Sequential(*layers)
        self.classifier = pooled_head(previous, dropout, num_classes)
