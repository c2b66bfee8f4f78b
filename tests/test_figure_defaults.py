"""What the figures show by default: Grad-CAM at a layer fine enough to see a face in, a history plot
whose accuracy axis does not exaggerate noise, and TensorBoard charts that pair train with validation."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

from fer_lightning.callbacks import SaliencyMapsCallback, TrainValChartsCallback
from fer_lightning.classes import NUM_CLASSES
from fer_lightning.data.datasets import ImageArrayDataset
from fer_lightning.data.synthetic import generate_synthetic_faces
from fer_lightning.errors import ConfigError
from fer_lightning.explain.attribution import (
    GRADCAM_MIN_MAP_SIZE,
    attribute,
    conv_layers,
    gradcam_layer,
)
from fer_lightning.models.cnn import ReportCNN
from fer_lightning.runs.training import instantiate_named
from fer_lightning.viz.figures import history_figure
from tests.conftest import compose_config
from tests.helpers import tensorboard_tags
from tests.test_figures_callbacks import trained_figures_run

pytestmark = pytest.mark.usefixtures("one_thread")


def report_shaped_net() -> ReportCNN:
    """The report network's layers and pools with small widths: the same map sizes, less arithmetic."""
    torch.manual_seed(0)
    return ReportCNN(channels=[4, 4, 8, 8, 8, 8, 8], hidden=[16, 16])


def measured_map_sizes(net: torch.nn.Module, size: int = 48) -> list[tuple[int, int]]:
    """Each conv's output (height, width) for one input, seen through forward hooks."""
    sizes: list[tuple[int, int]] = []
    hooks = [layer.register_forward_hook(lambda m, i, out: sizes.append(tuple(out.shape[-2:])))
             for layer in conv_layers(net)]
    with torch.no_grad():
        net.eval()(torch.zeros(1, 1, size, size))
    for hook in hooks:
        hook.remove()
    return sizes


# --------------------------------------------------------------------------------------- Grad-CAM
def test_default_gradcam_layer_is_the_last_conv_with_a_usable_map():
    net = report_shaped_net()
    layers, sizes = conv_layers(net), measured_map_sizes(net)
    chosen = layers.index(gradcam_layer(net))
    assert min(sizes[chosen]) >= GRADCAM_MIN_MAP_SIZE
    assert all(min(size) < GRADCAM_MIN_MAP_SIZE for size in sizes[chosen + 1:])
    assert chosen < len(layers) - 1  # not the last conv, whose map is too coarse
    # Explicit indices still mean what they meant.
    assert gradcam_layer(net, -1) is net.last_conv and gradcam_layer(net, 0) is layers[0]
    with pytest.raises(ConfigError, match="saliency.layer=9"):
        gradcam_layer(net, 9, "saliency.layer")


def test_gradcam_without_a_layer_uses_the_default_layer():
    net = report_shaped_net()
    images = torch.rand(NUM_CLASSES, 1, 48, 48)
    targets = list(range(NUM_CLASSES))
    default = attribute(net, images, targets, "gradcam")
    assert default.sum() > 0  # an untrained net's Grad-CAM is black for some classes, never for all
    assert torch.equal(default, attribute(net, images, targets, "gradcam", layer=gradcam_layer(net)))
    assert not torch.allclose(default, attribute(net, images, targets, "gradcam", layer=net.last_conv))


def gradcam_title(layer: int | None) -> str:
    """The title of the saliency figure the TensorBoard callback draws with Grad-CAM at ``layer``."""
    faces = generate_synthetic_faces(2 * NUM_CLASSES, seed=11)
    dataset = ImageArrayDataset(faces.images, faces.labels)
    trainer = SimpleNamespace(val_dataloaders=SimpleNamespace(dataset=dataset))
    callback = SaliencyMapsCallback(method="gradcam", layer=layer)
    drawn = []
    callback.log_figure = lambda trainer, tag, figure: drawn.append(figure)
    callback.draw(trainer, SimpleNamespace(net=report_shaped_net()))
    assert len(drawn) == 1
    return drawn[0].get_suptitle()


def test_tensorboard_gradcam_defaults_to_a_fine_layer_and_says_which():
    cfg = compose_config(["callbacks.saliency.method=gradcam"])
    GlobalHydra.instance().clear()
    (configured,) = [c for c in instantiate_named(cfg.callbacks) if isinstance(c, SaliencyMapsCallback)]
    net = report_shaped_net()
    sizes = measured_map_sizes(net)
    index = conv_layers(net).index(gradcam_layer(net, configured.layer))
    assert min(sizes[index]) >= GRADCAM_MIN_MAP_SIZE

    height, width = sizes[index]
    title = gradcam_title(configured.layer)
    assert f"conv {index + 1}/{len(sizes)}" in title and f"{height}x{width}" in title
    # An explicit index is honoured, and the title says so.
    height, width = sizes[-1]
    title = gradcam_title(-1)
    assert f"conv {len(sizes)}/{len(sizes)}" in title and f"{height}x{width}" in title


def test_report_gradcam_defaults_to_a_fine_layer(tmp_path):
    cfg = compose_config(["run_dir=unused"], config_name="report", output_dir=tmp_path)
    GlobalHydra.instance().clear()
    net = ReportCNN()  # the report's own network
    sizes = measured_map_sizes(net)
    assert cfg.saliency.layer is None  # the report uses the rule, as the TensorBoard callback does
    index = conv_layers(net).index(gradcam_layer(net, cfg.saliency.layer))
    assert min(sizes[index]) >= GRADCAM_MIN_MAP_SIZE
    assert min(sizes[-1]) < GRADCAM_MIN_MAP_SIZE  # the last conv layer, the old default, is too coarse


# ---------------------------------------------------------------------------------------- history
def test_history_accuracy_axis_is_fixed_with_a_chance_line_and_loss_fits_its_values():
    # A run stuck at chance: accuracy wobbles by a point, loss barely moves.
    rng = np.random.default_rng(0)
    epochs = range(10)
    chance = 1.0 / NUM_CLASSES
    history = {
        "acc/train": [(e, chance + 0.01 * rng.standard_normal()) for e in epochs],
        "acc/val": [(e, chance + 0.01 * rng.standard_normal()) for e in epochs],
        "loss/train": [(e, 1.945 + 0.001 * rng.standard_normal()) for e in epochs],
        "loss/val": [(e, 1.946 + 0.001 * rng.standard_normal()) for e in epochs],
    }
    axes = {a.get_title(): a for a in history_figure(history).axes}
    accuracy, loss = axes["accuracy"], axes["loss"]

    assert accuracy.get_ylim() == (0.0, 1.0)
    chance_lines = [line for line in accuracy.get_lines() if "chance" in line.get_label()]
    assert len(chance_lines) == 1
    line = chance_lines[0]
    assert line.get_linestyle() == "--"
    assert np.allclose(line.get_ydata(), chance)
    assert any("chance" in text.get_text() for text in accuracy.get_legend().get_texts())

    low, high = loss.get_ylim()
    values = [v for tag in ("loss/train", "loss/val") for _, v in history[tag]]
    assert low <= min(values) and high >= max(values)
    assert high - low < 0.1  # scaled to the values, not to a fixed range


# ------------------------------------------------------------------------------------ TensorBoard
def custom_scalar_layouts(log_dir: Path) -> list:
    """Every custom-scalars layout written below ``log_dir``, parsed."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.custom_scalar import layout_pb2, metadata

    layouts = []
    for events in Path(log_dir).rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events), size_guidance={"tensors": 0})
        accumulator.Reload()
        if metadata.CONFIG_SUMMARY_TAG in accumulator.Tags().get("tensors", []):
            for event in accumulator.Tensors(metadata.CONFIG_SUMMARY_TAG):
                layouts.append(layout_pb2.Layout.FromString(event.tensor_proto.string_val[0]))
    return layouts


def charts_by_tags(layout, tags: set[str]) -> dict[frozenset[str], str]:
    """For each multi-line chart: the set of ``tags`` its patterns match -> the chart's title."""
    charts = {}
    for category in layout.category:
        for chart in category.chart:
            patterns = list(chart.multiline.tag)
            matched = frozenset(t for t in tags if any(re.search(p, t) for p in patterns))
            charts[matched] = chart.title
    return charts


def test_train_val_charts_are_on_by_default_and_switch_off():
    def names(*overrides: str) -> set[str]:
        cfg = compose_config(list(overrides))
        GlobalHydra.instance().clear()
        return {type(c).__name__ for c in instantiate_named(cfg.callbacks)}

    assert "TrainValChartsCallback" in names()
    assert "TrainValChartsCallback" not in names("callbacks.train_val_charts=null")
    assert "TrainValChartsCallback" not in names("callbacks=none")


def test_layout_is_written_once_when_training_starts(tmp_path):
    import pytorch_lightning as pl
    from pytorch_lightning.loggers import TensorBoardLogger

    class Tiny(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch, batch_idx):
            return self.layer(batch[0]).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.rand(4, 2)), batch_size=2)
    trainer = pl.Trainer(
        max_epochs=2, logger=TensorBoardLogger(str(tmp_path), name="tb"), callbacks=[TrainValChartsCallback()],
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
    )
    trainer.fit(Tiny(), data)

    layouts = custom_scalar_layouts(tmp_path / "tb")
    assert len(layouts) == 1
    tags = {"acc/train", "acc/val", "acc_macro/val", "loss/train", "loss/val", "lr-AdamW"}
    charts = charts_by_tags(layouts[0], tags)
    assert frozenset({"acc/train", "acc/val"}) in charts  # acc_macro/val is not drawn into it
    assert frozenset({"loss/train", "loss/val"}) in charts


@pytest.mark.slow
def test_a_trained_run_pairs_its_logged_train_and_val_curves(tmp_path_factory):
    run = trained_figures_run(tmp_path_factory)
    logged = tensorboard_tags(run / "tensorboard")["scalars"]
    layouts = custom_scalar_layouts(run / "tensorboard")
    assert layouts, "no custom-scalars layout in the run's event files"
    charts = charts_by_tags(layouts[0], logged)
    for quantity in ("acc", "loss"):
        assert frozenset({f"{quantity}/train", f"{quantity}/val"}) in charts
