"""Hand-written softmax cross-entropy and its gradient against torch, in float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from fer_lightning.theory.softmax_cross_entropy import (
    cross_entropy,
    cross_entropy_grad,
    smoothed_targets,
    softmax,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def random_problem(batch: int, classes: int, scale: float, seed: int):
    generator = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(batch, classes, generator=generator, dtype=torch.float64)
    target = torch.randint(0, classes, (batch,), generator=generator)
    weight = 0.05 + 5.0 * torch.rand(classes, generator=generator, dtype=torch.float64)
    return logits, target, weight


@settings(max_examples=100, deadline=None)
@given(
    batch=st.integers(1, 8),
    classes=st.integers(2, 10),
    scale=st.sampled_from([1e-3, 1.0, 10.0, 60.0]),
    label_smoothing=st.one_of(st.just(0.0), st.floats(0.0, 1.0)),
    weighted=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_loss_and_gradient_match_torch(batch, classes, scale, label_smoothing, weighted, seed):
    logits, target, weight = random_problem(batch, classes, scale, seed)
    weight = weight if weighted else None
    leaf = logits.clone().requires_grad_(True)
    expected = F.cross_entropy(leaf, target, weight=weight, label_smoothing=label_smoothing)
    expected.backward()

    loss = cross_entropy(logits, target, weight=weight, label_smoothing=label_smoothing)
    grad = cross_entropy_grad(logits, target, weight=weight, label_smoothing=label_smoothing)

    torch.testing.assert_close(loss, expected.detach(), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(grad, leaf.grad, rtol=1e-9, atol=1e-10)


@settings(max_examples=50, deadline=None)
@given(batch=st.integers(1, 6), classes=st.integers(2, 8), seed=st.integers(0, 2**31 - 1))
def test_plain_gradient_is_prediction_minus_onehot_for_every_class(batch, classes, seed):
    logits, target, _ = random_problem(batch, classes, scale=3.0, seed=seed)
    grad = cross_entropy_grad(logits, target)
    p, y = softmax(logits), F.one_hot(target, classes).double()
    torch.testing.assert_close(grad, (p - y) / batch, rtol=1e-12, atol=1e-14)
    # Non-target classes (y_j = 0) get +p_j / N: a push down on every wrong logit, not only the target's.
    wrong = y == 0
    assert torch.all(grad[wrong] > 0)
    assert torch.all(grad[~wrong] < 0)


def test_per_output_binary_cross_entropy_is_a_different_loss_with_a_different_gradient():
    # Treating each softmax output as its own binary problem, -[y log p + (1 - y) log(1 - p)] summed
    # over classes, adds terms for the y_j = 0 classes that categorical cross-entropy does not have.
    logits, target, _ = random_problem(4, 5, scale=2.0, seed=7)
    leaf = logits.clone().requires_grad_(True)
    p, y = leaf.softmax(dim=1), F.one_hot(target, 5).double()
    per_output_bce = -(y * p.log() + (1 - y) * (1 - p).log()).sum(dim=1).mean()
    per_output_bce.backward()
    assert not torch.allclose(leaf.grad, cross_entropy_grad(logits, target), rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("weighted", [False, True])
def test_gradient_rows_sum_to_zero(weighted):
    # Adding a constant to a row of logits leaves softmax unchanged, so the loss cannot depend on it.
    logits, target, weight = random_problem(6, 7, scale=2.0, seed=3)
    grad = cross_entropy_grad(logits, target, weight if weighted else None, label_smoothing=0.1)
    torch.testing.assert_close(grad.sum(dim=1), torch.zeros(6, dtype=torch.float64), atol=1e-15, rtol=0)


def test_smoothed_targets_spread_eps_evenly_and_sum_to_one():
    y = smoothed_targets(torch.tensor([2, 0]), num_classes=4, label_smoothing=0.2)
    assert y[0, 2].item() == pytest.approx(0.8 + 0.05)
    assert y[0, 0].item() == pytest.approx(0.05)
    torch.testing.assert_close(y.sum(dim=1), torch.ones(2, dtype=torch.float64))


def test_softmax_is_stable_for_huge_logits():
    p = softmax(torch.tensor([[1000.0, 0.0, -1000.0]], dtype=torch.float64))
    assert torch.isfinite(p).all()
    torch.testing.assert_close(p, torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64))


@pytest.mark.parametrize("eps", [-0.1, 1.5])
def test_label_smoothing_outside_unit_interval_is_rejected(eps):
    with pytest.raises(ValueError):
        smoothed_targets(torch.tensor([0]), num_classes=3, label_smoothing=eps)
