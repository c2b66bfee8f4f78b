"""The report's CNN: seven 3x3 conv blocks and three fully connected layers.

Widths, pooling positions and dropout rates are arguments so that config variants
(narrow, wide, no dropout, heavier dropout) are the same class.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fer_lightning.classes import IMAGE_SIZE, NUM_CLASSES

REPORT_CHANNELS = (16, 32, 64, 128, 256, 512, 512)
REPORT_POOL_AFTER = (2, 4, 5, 6, 7)  # 1-based conv layer indices followed by max-pool 2
REPORT_HIDDEN = (256, 128)
# Dropout after each of the 7 conv blocks, then after each hidden linear layer.
REPORT_DROPOUT_SCHEDULE = (0.0, 0.1, 0.2, 0.3, 0.3, 0.5, 0.5, 0.7, 0.7)


def scaled_dropout(schedule: Sequence[float], peak: float | None) -> list[float]:
    """Rescale a dropout schedule so that its largest rate equals ``peak``.

    ``peak=None`` keeps the schedule as written; an all-zero schedule stays zero.
    """
    rates = [float(r) for r in schedule]
    if peak is None:
        return rates
    top = max(rates, default=0.0)
    if top == 0.0:
        return rates
    return [r * float(peak) / top for r in rates]


def conv_block(in_channels: int, out_channels: int, negative_slope: float) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(negative_slope, inplace=True),
    ]


class ReportCNN(nn.Module):
    """Conv(3x3)+BN+LeakyReLU blocks with max-pools and rising dropout, then an MLP head.

    Input: ``(N, 1, 48, 48)`` floats in [0, 1]. Output: ``(N, num_classes)`` logits.
    """

    def __init__(
        self,
        channels: Sequence[int] = REPORT_CHANNELS,
        pool_after: Sequence[int] = REPORT_POOL_AFTER,
        hidden: Sequence[int] = REPORT_HIDDEN,
        dropout_schedule: Sequence[float] = REPORT_DROPOUT_SCHEDULE,
        dropout: float | None = None,
        num_classes: int = NUM_CLASSES,
        in_channels: int = 1,
        image_size: int = IMAGE_SIZE,
        negative_slope: float = 0.01,
    ) -> None:
        super().__init__()
        channels, hidden = list(channels), list(hidden)
        rates = scaled_dropout(dropout_schedule, dropout)
        if len(rates) != len(channels) + len(hidden):
            raise ValueError(
                f"dropout_schedule needs {len(channels) + len(hidden)} rates "
                f"(one per conv block and hidden layer), got {len(rates)}"
            )
        layers: list[nn.Module] = []
        size, previous = image_size, in_channels
        for index, width in enumerate(channels, start=1):
            layers += conv_block(previous, width, negative_slope)
            if index in pool_after:
                layers.append(nn.MaxPool2d(2))
                size //= 2
            if rates[index - 1] > 0:
                layers.append(nn.Dropout(rates[index - 1]))
            previous = width
        if size < 1:
            raise ValueError(f"{len(list(pool_after))} max-pools shrink a {image_size}px input to nothing")
        self.features = nn.Sequential(*layers)

        head: list[nn.Module] = [nn.Flatten()]
        previous = channels[-1] * size * size
        for width, rate in zip(hidden, rates[len(channels):]):
            head += [nn.Linear(previous, width), nn.LeakyReLU(negative_slope, inplace=True)]
            if rate > 0:
                head.append(nn.Dropout(rate))
            previous = width
        head.append(nn.Linear(previous, num_classes))
        self.classifier = nn.Sequential(*head)

    @property
    def last_conv(self) -> nn.Conv2d:
        """The last convolution, the usual target of Grad-CAM and filter pictures."""
        return [m for m in self.features if isinstance(m, nn.Conv2d)][-1]

    def conv_layers(self) -> list[nn.Conv2d]:
        return [m for m in self.features if isinstance(m, nn.Conv2d)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
