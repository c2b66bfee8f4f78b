"""Batch normalisation in training mode, forward and a hand-written backward.

For inputs ``(N, D)`` the statistics are per feature over the batch; for conv activations
``(N, C, H, W)`` they are per channel over N, H and W (m = N*H*W values each). With
x_hat = (x - mu) / sigma and sigma = sqrt(var + eps), var biased (divided by m):

    dbeta  = sum(dy)
    dgamma = sum(dy * x_hat)
    dx     = gamma / (m * sigma) * (m * dy - sum(dy) - x_hat * sum(dy * x_hat))

docs/math.md derives these; tests/test_math_batchnorm.py checks them against autograd.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class BatchNormCache:
    """What the backward pass needs from the forward pass."""

    x_hat: torch.Tensor
    inv_std: torch.Tensor  # 1 / sigma, shaped to broadcast against x
    gamma: torch.Tensor  # shaped to broadcast against x
    axes: tuple[int, ...]  # the axes the statistics reduce over


def _statistic_axes(x: torch.Tensor) -> tuple[int, ...]:
    if x.dim() < 2:
        raise ValueError(f"batch norm needs (N, D) or (N, C, ...) inputs, got shape {tuple(x.shape)}")
    return (0, *range(2, x.dim()))


def _per_channel(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape a (C,) vector so it broadcasts over (N, C, ...)."""
    return values.reshape(1, -1, *([1] * (x.dim() - 2)))


def batchnorm_forward(
    x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5
) -> tuple[torch.Tensor, BatchNormCache]:
    """Normalise with the batch's own mean and biased variance, then scale by gamma and shift by beta."""
    axes = _statistic_axes(x)
    mean = x.mean(dim=axes, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=axes, keepdim=True)  # biased: divides by m, as training-mode BN does
    inv_std = torch.rsqrt(var + eps)
    x_hat = (x - mean) * inv_std
    gamma_b = _per_channel(gamma, x)
    out = gamma_b * x_hat + _per_channel(beta, x)
    return out, BatchNormCache(x_hat=x_hat, inv_std=inv_std, gamma=gamma_b, axes=axes)


def batchnorm_backward(
    dy: torch.Tensor, cache: BatchNormCache
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients (dx, dgamma, dbeta) of a loss given its gradient ``dy`` with respect to the output."""
    axes, x_hat = cache.axes, cache.x_hat
    m = x_hat.numel() // x_hat.shape[1]  # values per statistic
    sum_dy = dy.sum(dim=axes, keepdim=True)
    sum_dy_xhat = (dy * x_hat).sum(dim=axes, keepdim=True)
    dx = cache.gamma * cache.inv_std / m * (m * dy - sum_dy - x_hat * sum_dy_xhat)
    return dx, sum_dy_xhat.flatten(), sum_dy.flatten()
