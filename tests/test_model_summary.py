"""The computed layer table against shapes recorded by hooks during a real forward pass."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from fer_lightning.models.cnn import ReportCNN
from fer_lightning.viz.model_table import LayerRow, format_summary, summarize


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def recorded_shapes(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """Per-sample output shape of every leaf module, recorded by forward hooks, keyed by dotted name."""
    shapes: dict[str, tuple[int, ...]] = {}

    def recorder(name: str):
        def hook(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
            shapes[name] = tuple(output.shape[1:])

        return hook

    handles = [
        module.register_forward_hook(recorder(name))
        for name, module in model.named_modules()
        if name and not any(True for _ in module.children())
    ]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(2, *input_shape))
    finally:
        for handle in handles:
            handle.remove()
    return shapes


def assert_matches_forward_pass(model: nn.Module, input_shape: tuple[int, ...]) -> list[LayerRow]:
    rows = summarize(model, input_shape)
    assert {row.name: row.output_shape for row in rows} == recorded_shapes(model, input_shape)
    assert sum(row.params for row in rows) == sum(p.numel() for p in model.parameters())
    return rows


def test_report_cnn_default_shapes_and_parameter_count():
    model = ReportCNN()
    rows = assert_matches_forward_pass(model, (1, 48, 48))
    assert sum(row.params for row in rows) == 4_100_455
    # Walk order is features then classifier, each in the order its Sequential applies them.
    assert [row.name for row in rows] == [f"features.{i}" for i in range(len(model.features))] + [
        f"classifier.{i}" for i in range(len(model.classifier))
    ]
    spatial = [row.output_shape[1] for row in rows if row.kind == "MaxPool2d"]
    assert spatial == [24, 12, 6, 3, 1]
    assert rows[-1] == LayerRow("classifier.7", "Linear", (7,), 128 * 7 + 7, flops=2 * 128 * 7)


REPORT_CNN_VARIANTS = [
    (dict(channels=(8, 8, 16, 16, 32, 32, 64)), (1, 48, 48)),
    (dict(channels=(4, 8, 8), pool_after=(1, 3), hidden=(32,), dropout_schedule=(0.1, 0, 0.2, 0.5)), (1, 48, 48)),
    # Odd input size: every pool rounds down (37 -> 18 -> 9).
    (
        dict(channels=(4, 8), pool_after=(1, 2), hidden=(16, 16), dropout_schedule=(0,) * 4, image_size=37),
        (1, 37, 37),
    ),
    (dict(dropout=0.0, num_classes=3, in_channels=3), (3, 48, 48)),
]


@pytest.mark.parametrize(("kwargs", "input_shape"), REPORT_CNN_VARIANTS)
def test_report_cnn_variants_match_forward_pass(kwargs, input_shape):
    assert_matches_forward_pass(ReportCNN(**kwargs), input_shape)


def test_generic_sequential_with_nested_blocks_and_unusual_hyperparameters():
    model = nn.Sequential(
        nn.Conv2d(2, 6, kernel_size=(3, 5), stride=(2, 1), padding=(1, 2), dilation=(1, 2)),
        nn.Sequential(nn.BatchNorm2d(6), nn.GELU(), nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)),
        nn.Conv2d(6, 4, kernel_size=3, padding="same", bias=False),
        nn.AvgPool2d(2, ceil_mode=True),
        nn.AdaptiveAvgPool2d((2, None)),
        nn.Dropout2d(0.2),
        nn.Flatten(start_dim=2),
        nn.Linear(8, 9),
        nn.Flatten(),
        nn.BatchNorm1d(36),
        nn.Linear(36, 4),
        nn.LogSoftmax(dim=1),
    )
    rows = assert_matches_forward_pass(model, (2, 29, 17))
    assert rows[1].name == "1.0"  # nested Sequential children keep their dotted path


def block(in_ch: int, out_ch: int, kernel: int, stride: int, padding: int, pool: int) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, kernel, stride, padding), nn.ReLU()]
    return layers + ([nn.MaxPool2d(pool)] if pool > 1 else [])


@settings(max_examples=30, deadline=None)
@given(
    size=st.integers(8, 40),
    blocks=st.lists(
        # (width, kernel, stride, padding, pool)
        st.tuples(*(st.integers(lo, hi) for lo, hi in [(1, 4), (1, 5), (1, 3), (0, 2), (1, 3)])),
        min_size=1,
        max_size=3,
    ),
)
def test_random_conv_stacks_match_forward_pass(size, blocks):
    layers: list[nn.Module] = []
    channels = 1
    for width, kernel, stride, padding, pool in blocks:
        layers += block(channels, width, kernel, stride, padding, pool)
        channels = width
    model = nn.Sequential(*layers, nn.Flatten())
    try:
        recorded_shapes(model, (1, size, size))
    except RuntimeError:  # torch rejects the stack: the summary must reject it too
        with pytest.raises(ValueError):
            summarize(model, (1, size, size))
        return
    assert_matches_forward_pass(model, (1, size, size))


def test_summary_never_runs_the_model():
    model = ReportCNN()
    model.register_forward_pre_hook(lambda *_: pytest.fail("summarize ran the model"))
    assert summarize(model)[0].output_shape == (16, 48, 48)


def test_unknown_layer_is_a_clear_error():
    class Mystery(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(TypeError, match="Mystery"):
        summarize(nn.Sequential(nn.Conv2d(1, 2, 3), Mystery()))


def test_non_sequential_container_is_refused():
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3)

    with pytest.raises(TypeError, match="Block"):
        summarize(nn.Sequential(Block()))
    with pytest.raises(TypeError, match="Block"):
        summarize(Block(), (1, 8, 8))


def test_mismatched_layer_names_the_layer():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(10, 2))
    with pytest.raises(ValueError, match=r"^2: Linear expects 10 input features"):
        summarize(model, (1, 8, 8))
    with pytest.raises(ValueError, match="input channels"):
        summarize(nn.Sequential(nn.Conv2d(3, 4, 3)), (1, 8, 8))


def test_format_summary_lists_every_layer_and_the_total():
    rows = summarize(ReportCNN())
    text = format_summary(rows)
    lines = text.splitlines()
    assert len(lines) == len(rows) + 5  # header, two rules, total parameters, total FLOPs
    assert lines[-2] == "Total parameters: 4,100,455"
    assert lines[-1].startswith("Forward FLOPs per face: 0.341 G")
    conv_line = next(line for line in lines if line.startswith("features.0 "))
    assert conv_line.split()[1:] == ["Conv2d", "16", "x", "48", "x", "48", "160"]
