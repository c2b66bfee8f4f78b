"""Output sizes of convolutions and max-pools, from the closed-form formula.

    H_out = floor((H_in + 2p - d(k - 1) - 1) / s) + 1

for each spatial axis, with kernel size k, stride s, padding p and dilation d. Pooling uses the same
formula; with ``ceil_mode`` it rounds up, but a window may not start in the right-hand padding.
These functions follow ``torch.nn.Conv2d`` and ``torch.nn.MaxPool2d`` exactly, including which
arguments they reject (tests/test_math_conv.py checks both against torch).
"""

from __future__ import annotations

IntOrPair = int | tuple[int, int]


def as_pair(value: IntOrPair, name: str) -> tuple[int, int]:
    """``3 -> (3, 3)``; a pair stays as it is (height, width)."""
    if isinstance(value, int):
        return value, value
    pair = tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return pair[0], pair[1]


def _check_hyperparameters(kernel: int, stride: int, padding: int, dilation: int) -> None:
    if kernel < 1 or stride < 1 or dilation < 1:
        raise ValueError(
            f"kernel size, stride and dilation must be positive, got kernel={kernel}, "
            f"stride={stride}, dilation={dilation}"
        )
    if padding < 0:
        raise ValueError(f"padding must be non-negative, got {padding}")


def effective_kernel(kernel: int, dilation: int) -> int:
    """Span of a dilated kernel: d(k - 1) + 1 input positions."""
    return dilation * (kernel - 1) + 1


def conv_output_length(length: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of a convolution along one axis."""
    _check_hyperparameters(kernel, stride, padding, dilation)
    padded = length + 2 * padding
    if padded < effective_kernel(kernel, dilation):
        raise ValueError(
            f"a kernel spanning {effective_kernel(kernel, dilation)} does not fit an input of "
            f"{length} padded by {padding} on each side"
        )
    # Python's // is floor division, which is what the formula's floor needs.
    return (padded - effective_kernel(kernel, dilation)) // stride + 1


def pool_output_length(
    length: int,
    kernel: int,
    stride: int | None = None,
    padding: int = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> int:
    """Output length of a max-pool along one axis; ``stride=None`` means stride = kernel (torch's default)."""
    stride = kernel if stride is None else stride
    _check_hyperparameters(kernel, stride, padding, dilation)
    # torch rejects padding over half the (undilated) kernel size: edge windows could see only padding.
    if padding > kernel // 2:
        raise ValueError(f"pooling padding {padding} is more than half the kernel size {kernel}")
    span = length + 2 * padding - effective_kernel(kernel, dilation)
    if ceil_mode:
        out = -(-span // stride) + 1  # exact integer ceil, also for negative spans
        # The last window must start inside the input or the left padding, never in the right padding.
        if (out - 1) * stride >= length + padding:
            out -= 1
    else:
        out = span // stride + 1
    if out < 1:
        raise ValueError(
            f"a {kernel}-wide pool (stride {stride}, padding {padding}, dilation {dilation}) "
            f"leaves no output from an input of {length}"
        )
    return out


def conv2d_output_shape(
    size: IntOrPair,
    kernel_size: IntOrPair,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
) -> tuple[int, int]:
    """(H_out, W_out) of ``nn.Conv2d`` for an input of spatial size ``size`` = (H, W) or H for square."""
    axes = zip(
        as_pair(size, "size"),
        as_pair(kernel_size, "kernel_size"),
        as_pair(stride, "stride"),
        as_pair(padding, "padding"),
        as_pair(dilation, "dilation"),
    )
    h, w = (conv_output_length(*axis) for axis in axes)
    return h, w


def maxpool2d_output_shape(
    size: IntOrPair,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    ceil_mode: bool = False,
) -> tuple[int, int]:
    """(H_out, W_out) of ``nn.MaxPool2d``; ``stride=None`` means stride = kernel_size."""
    kernels = as_pair(kernel_size, "kernel_size")
    strides = kernels if stride is None else as_pair(stride, "stride")
    paddings, dilations = as_pair(padding, "padding"), as_pair(dilation, "dilation")
    axes = zip(as_pair(size, "size"), kernels, strides, paddings, dilations)
    h, w = (pool_output_length(*axis, ceil_mode=ceil_mode) for axis in axes)
    return h, w
