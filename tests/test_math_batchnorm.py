"""Hand-written BatchNorm forward and backward against torch's autograd, in float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from fer_lightning.theory.batchnorm import batchnorm_backward, batchnorm_forward

# (N, D) feature vectors and (N, C, H, W) conv activations; at least two values per statistic.
shapes = st.one_of(
    st.tuples(st.integers(2, 8), st.integers(1, 6)),
    st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 5), st.integers(2, 5)),
)


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    # Thousands of tiny tensor ops: thread start-up costs more than the arithmetic.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def random_inputs(shape: tuple[int, ...], seed: int, scale: float):
    generator = torch.Generator().manual_seed(seed)
    randn = lambda *size: torch.randn(*size, generator=generator, dtype=torch.float64)  # noqa: E731
    channels = shape[1]
    x = scale * randn(*shape) + 3.0 * randn(1, channels, *[1] * (len(shape) - 2))  # per-channel offsets
    return x, randn(channels), randn(channels), randn(*shape)


@settings(max_examples=80, deadline=None)
@given(
    shape=shapes,
    seed=st.integers(0, 2**31 - 1),
    scale=st.sampled_from([1e-2, 1.0, 30.0]),
    eps=st.sampled_from([1e-5, 1e-3, 0.1]),
)
def test_forward_and_backward_match_autograd(shape, seed, scale, eps):
    x, gamma, beta, dy = random_inputs(shape, seed, scale)
    leaves = [t.clone().requires_grad_(True) for t in (x, gamma, beta)]
    expected = F.batch_norm(leaves[0], None, None, leaves[1], leaves[2], training=True, eps=eps)
    expected.backward(dy)

    out, cache = batchnorm_forward(x, gamma, beta, eps=eps)
    dx, dgamma, dbeta = batchnorm_backward(dy, cache)

    torch.testing.assert_close(out, expected.detach(), rtol=1e-10, atol=1e-10)
    for got, leaf in zip((dx, dgamma, dbeta), leaves):
        assert got.shape == leaf.shape
        torch.testing.assert_close(got, leaf.grad, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("shape", [(16, 3), (4, 3, 5, 6)])
def test_normalised_output_has_zero_mean_unit_variance_per_channel(shape):
    x, _, _, _ = random_inputs(shape, seed=0, scale=5.0)
    ones, zeros = torch.ones(shape[1], dtype=torch.float64), torch.zeros(shape[1], dtype=torch.float64)
    out, cache = batchnorm_forward(x, ones, zeros, eps=1e-12)
    per_channel = out.transpose(0, 1).reshape(shape[1], -1)
    torch.testing.assert_close(per_channel.mean(dim=1), zeros, atol=1e-12, rtol=0)
    # Biased variance: dividing by m (not m - 1) gives exactly 1.
    torch.testing.assert_close(per_channel.var(dim=1, correction=0), ones)
    assert cache.axes == ((0,) if len(shape) == 2 else (0, 2, 3))


def test_input_gradient_is_orthogonal_to_the_mean_and_scale_directions():
    # dx removes the components of dy along 1 and x_hat: shifting or scaling a channel's input
    # does not change its normalised output, so the gradient has no component in those directions.
    # Scale invariance is exact only without eps, hence eps=0 here.
    x, gamma, beta, dy = random_inputs((3, 4, 5, 5), seed=1, scale=2.0)
    _, cache = batchnorm_forward(x, gamma, beta, eps=0.0)
    dx, _, _ = batchnorm_backward(dy, cache)
    zeros = torch.zeros(4, dtype=torch.float64)
    torch.testing.assert_close(dx.sum(dim=(0, 2, 3)), zeros, atol=1e-10, rtol=0)
    torch.testing.assert_close((dx * cache.x_hat).sum(dim=(0, 2, 3)), zeros, atol=1e-10, rtol=0)


def test_one_dimensional_input_is_rejected():
    with pytest.raises(ValueError):
        batchnorm_forward(torch.zeros(5), torch.ones(5), torch.zeros(5))
