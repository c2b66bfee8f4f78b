"""Softmax cross-entropy with label smoothing and class weights, with its gradient written out.

Matches ``torch.nn.functional.cross_entropy(logits, target, weight=w, label_smoothing=eps)`` with
mean reduction. With K classes, p = softmax(z) and the smoothed target y = (1 - eps) * onehot + eps / K,
torch weights each term -y_c log p_c by w_c and divides the batch sum by the target-class weights:

    loss = sum_n sum_c w_c y_nc (-log p_nc) / sum_n w_{t_n}

(with no weights, w = 1 and the divisor is N). The gradient with respect to the logits is

    dloss/dz_nj = (s_n p_nj - w_j y_nj) / sum_n w_{t_n},   s_n = sum_c w_c y_nc,

which is (p - y) / N without weights: p_j - y_j for every class j, not only the target.
docs/math.md derives it; tests/test_math_softmax.py checks both functions against autograd.
"""

from __future__ import annotations

import torch


def log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """log p over the last axis, shifted by the row maximum so exp never overflows."""
    shifted = logits - logits.max(dim=-1, keepdim=True).values
    return shifted - shifted.exp().sum(dim=-1, keepdim=True).log()


def softmax(logits: torch.Tensor) -> torch.Tensor:
    return log_softmax(logits).exp()


def smoothed_targets(
    target: torch.Tensor, num_classes: int, label_smoothing: float = 0.0, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """(N, K) targets (1 - eps) * onehot(target) + eps / K; eps = 0 gives the plain one-hot."""
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must lie in [0, 1], got {label_smoothing}")
    onehot = torch.nn.functional.one_hot(target, num_classes).to(dtype)
    return (1.0 - label_smoothing) * onehot + label_smoothing / num_classes


def _weighted_targets(
    logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None, label_smoothing: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(w_c * y_nc, normaliser): the per-term weights of -log p and what the batch sum is divided by."""
    if logits.dim() != 2 or target.shape != logits.shape[:1]:
        raise ValueError(
            "expected logits (N, K) and class indices (N,), "
            f"got {tuple(logits.shape)} and {tuple(target.shape)}"
        )
    y = smoothed_targets(target, logits.shape[1], label_smoothing, dtype=logits.dtype)
    if weight is None:
        return y, torch.tensor(float(len(target)), dtype=logits.dtype)
    weight = weight.to(logits.dtype)
    # torch divides by the weights of the true classes, not by N and not by the smoothed weights.
    return y * weight, weight[target].sum()


def cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Mean softmax cross-entropy of ``(N, K)`` logits against class indices, as torch defines it."""
    q, normaliser = _weighted_targets(logits, target, weight, label_smoothing)
    return -(q * log_softmax(logits)).sum() / normaliser


def cross_entropy_grad(
    logits: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """d cross_entropy / d logits, from dp_i/dz_j = p_i (delta_ij - p_j): (s_n p - w y) / normaliser."""
    q, normaliser = _weighted_targets(logits, target, weight, label_smoothing)
    s = q.sum(dim=1, keepdim=True)  # = 1 per sample without class weights
    return (s * softmax(logits) - q) / normaliser
