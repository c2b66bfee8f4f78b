"""Conv and max-pool output sizes: the closed-form formula against torch itself."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from fer_lightning.theory.conv_arithmetic import (
    conv2d_output_shape,
    conv_output_length,
    maxpool2d_output_shape,
    pool_output_length,
)

small = st.integers(min_value=1, max_value=5)


def pair_of(strategy: st.SearchStrategy[int]) -> st.SearchStrategy[tuple[int, int]]:
    return st.tuples(strategy, strategy)


def int_or_pair(strategy: st.SearchStrategy[int]) -> st.SearchStrategy[int | tuple[int, int]]:
    return st.one_of(strategy, pair_of(strategy))


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    # Thousands of tiny tensor ops: thread start-up costs more than the arithmetic.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def torch_shape(run) -> tuple[int, int] | None:
    """Spatial output shape of a torch call, or None when torch rejects the arguments."""
    try:
        return tuple(run().shape[-2:])
    except RuntimeError:
        return None


def formula_shape(compute) -> tuple[int, int] | None:
    try:
        return compute()
    except ValueError:
        return None


@settings(max_examples=80, deadline=None)
@given(
    size=pair_of(st.integers(1, 24)),
    kernel=int_or_pair(small),
    stride=int_or_pair(st.integers(1, 4)),
    padding=int_or_pair(st.integers(0, 3)),
    dilation=int_or_pair(st.integers(1, 3)),
)
def test_conv2d_shape_matches_torch(size, kernel, stride, padding, dilation):
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    x, weight = torch.zeros(1, 1, *size), torch.zeros(1, 1, kh, kw)
    expected = torch_shape(lambda: F.conv2d(x, weight, stride=stride, padding=padding, dilation=dilation))
    got = formula_shape(lambda: conv2d_output_shape(size, kernel, stride, padding, dilation))
    assert got == expected  # equal shapes, or both reject the arguments


@settings(max_examples=100, deadline=None)
@given(
    size=pair_of(st.integers(1, 24)),
    kernel=int_or_pair(small),
    stride=st.one_of(st.none(), int_or_pair(st.integers(1, 4))),
    padding=int_or_pair(st.integers(0, 3)),
    dilation=int_or_pair(st.integers(1, 3)),
    ceil_mode=st.booleans(),
)
def test_maxpool2d_shape_matches_torch(size, kernel, stride, padding, dilation, ceil_mode):
    x = torch.zeros(1, 1, *size)
    expected = torch_shape(
        lambda: F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode=ceil_mode)
    )
    got = formula_shape(lambda: maxpool2d_output_shape(size, kernel, stride, padding, dilation, ceil_mode))
    assert got == expected


def test_same_padding_3x3_keeps_size_and_pool_2_halves_it():
    # The report's blocks: 3x3 conv with padding 1 keeps the size; 2x2 max-pool halves it, rounding down.
    assert conv2d_output_shape(48, 3, 1, 1) == (48, 48)
    assert maxpool2d_output_shape(48, 2) == (24, 24)
    assert maxpool2d_output_shape(3, 2) == (1, 1)
    assert maxpool2d_output_shape(3, 2, ceil_mode=True) == (2, 2)


def test_report_network_shrinks_48_to_1():
    size, sizes = 48, []
    for layer in range(1, 8):
        size = conv_output_length(size, kernel=3, padding=1)
        if layer in (2, 4, 5, 6, 7):
            size = pool_output_length(size, kernel=2)
        sizes.append(size)
    assert sizes == [48, 24, 24, 12, 6, 3, 1]


def test_per_axis_parameters_apply_to_their_own_axis():
    # Height: (10 - 2*2 - 1) // 1 + 1 = 6; width: (20 + 4 - 4 - 1) // 2 + 1 = 10.
    shape = conv2d_output_shape((10, 20), kernel_size=(3, 5), stride=(1, 2), padding=(0, 2), dilation=(2, 1))
    assert shape == (6, 10)


@pytest.mark.parametrize(
    "call",
    [
        lambda: conv_output_length(2, kernel=3),  # kernel larger than the input
        lambda: conv_output_length(5, kernel=3, dilation=3),  # dilated span 7 > 5
        lambda: conv_output_length(5, kernel=0),
        lambda: conv_output_length(5, kernel=3, stride=0),
        lambda: conv_output_length(5, kernel=3, padding=-1),
        lambda: pool_output_length(1, kernel=2),  # floor(-1/2) + 1 = 0
        lambda: pool_output_length(8, kernel=3, padding=2),  # padding over half the window
        lambda: conv2d_output_shape((8, 2), kernel_size=3),  # fails on the width only
        lambda: conv2d_output_shape(8, kernel_size=(3, 3, 3)),
    ],
)
def test_impossible_arguments_raise_value_error(call):
    with pytest.raises(ValueError):
        call()
