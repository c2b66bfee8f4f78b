"""The report's figures while training: what reaches TensorBoard, and the pieces behind each figure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from fer_lightning.callbacks import ConfusionMatrixCallback, FilterPicturesCallback, SaliencyMapsCallback
from fer_lightning.classes import CLASS_NAMES
from fer_lightning.errors import ConfigError
from fer_lightning.explain.attribution import (
    METHODS,
    attribute,
    conv_layer,
    examples_per_class,
    mass_inside,
)
from fer_lightning.explain.filter_visualization import choose_filters, filter_response, maximize_filters
from fer_lightning.models.cnn import ReportCNN
from fer_lightning.runs.training import instantiate_named
from fer_lightning.viz.figures import (
    confused_pairs,
    confusion_matrix_figure,
    figure_to_array,
    row_normalized,
)
from tests.conftest import compose_config
from tests.helpers import ROOT, run_cli, tensorboard_tags

FIGURE_TAGS = ("figures/confusion_matrix", "figures/saliency", "figures/filters", "figures/feature_maps")
# Two epochs with the default callbacks: the confusion matrix every epoch, saliency maps (every 5
# epochs) and filter pictures only at the end. A smaller net than FAST's and fewer ascent steps than
# the default keep it quick.
# Spelled out rather than built on FAST, so that the figure callbacks' defaults are what runs here.
FIGURES_RUN = [
    "data.synthetic.train=448", "data.synthetic.val=192", "data.synthetic.test=0", "trainer.max_epochs=2",
    "model.net.channels=[8,8,16,16,32,32,32]", "model.net.hidden=[64,32]", "callbacks.progress_bar=null",
    "print_config=false", "name=figures", "callbacks.filter_pictures.steps=8",
]


pytestmark = pytest.mark.usefixtures("one_thread")


def trained_figures_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run trained from the command line, shared by every module of the session.

    The run directory is the same for the same command, and a finished run is not trained again,
    so the first module that asks trains it and the others find it.
    """
    root = tmp_path_factory.getbasetemp() / "figures-run"
    done = sorted(root.glob("runs/figures/*/metrics.json"))
    if not done:
        result = run_cli("fer_lightning.train", *FIGURES_RUN, f"paths.log_dir={root}", timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        done = sorted(root.glob("runs/figures/*/metrics.json"))
    assert len(done) == 1
    return done[0].parent


@pytest.fixture(scope="module")
def figures_run(tmp_path_factory) -> Path:
    return trained_figures_run(tmp_path_factory)


def image_steps(log_dir: Path) -> dict[str, list[int]]:
    """tag -> steps at which an image was logged."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    steps: dict[str, list[int]] = {}
    for events in sorted(log_dir.rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events), size_guidance={"images": 0})
        accumulator.Reload()
        for tag in accumulator.Tags()["images"]:
            steps.setdefault(tag, []).extend(e.step for e in accumulator.Images(tag))
    return steps


# ------------------------------------------------------------------------------- training run
@pytest.mark.slow
def test_training_leaves_every_figure_in_tensorboard(figures_run):
    tags = tensorboard_tags(figures_run / "tensorboard")
    for tag in ("loss/train", "loss/val", "acc/train", "acc/val"):
        assert tag in tags["scalars"]
    for tag in FIGURE_TAGS:
        assert tag in tags["images"], f"{tag} missing from {sorted(tags['images'])}"

    steps = image_steps(figures_run / "tensorboard")
    assert len(steps["figures/confusion_matrix"]) == 2  # every validation epoch, not the sanity check
    assert len(set(steps["figures/confusion_matrix"])) == 2
    # Saliency is due every 5 epochs, so in 2 epochs only the end draws it, once.
    assert len(steps["figures/saliency"]) == 1
    assert steps["figures/saliency"] == steps["figures/filters"] == [max(steps["figures/confusion_matrix"])]


@pytest.mark.slow
def test_confused_pairs_are_logged_as_text(figures_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found = set()
    for events in (figures_run / "tensorboard").glob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events), size_guidance={"tensors": 0})
        accumulator.Reload()
        found |= set(accumulator.Tags().get("tensors", []))
    assert any(tag.startswith("figures/confused_pairs") for tag in found)


# ----------------------------------------------------------------------------------- config
def callback_types(*overrides: str) -> set[str]:
    cfg = compose_config(list(overrides))  # the shipped defaults, not the test-speed FAST list
    return {type(c).__name__ for c in instantiate_named(cfg.callbacks)}


def test_figure_callbacks_are_on_by_default_and_switch_off_one_by_one():
    names = {"ConfusionMatrixCallback", "SaliencyMapsCallback", "FilterPicturesCallback"}
    assert names <= callback_types()
    assert callback_types("callbacks.saliency=null") & names == names - {"SaliencyMapsCallback"}
    assert not callback_types("callbacks=none") & names


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SaliencyMapsCallback(method="lime"), "callbacks.saliency.method='lime'"),
        (lambda: SaliencyMapsCallback(per_class=0), "callbacks.saliency.per_class=0"),
        (lambda: SaliencyMapsCallback(target="other"), "callbacks.saliency.target='other'"),
        (lambda: ConfusionMatrixCallback(every_n_epochs=-2), "callbacks.confusion_matrix.every_n_epochs=-2"),
        (lambda: FilterPicturesCallback(steps=0), "callbacks.filter_pictures.steps=0"),
    ],
)
def test_impossible_settings_are_config_errors(make, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        make()


def test_periodic_drawing_follows_every_n_epochs(tmp_path):
    from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

    callback = SaliencyMapsCallback(every_n_epochs=5, at_end=True)
    tensorboard = [TensorBoardLogger(str(tmp_path))]

    def trainer(epoch: int, loggers=tensorboard, sanity: bool = False) -> SimpleNamespace:
        return SimpleNamespace(current_epoch=epoch, sanity_checking=sanity, loggers=loggers, global_step=10 * epoch)

    assert [e for e in range(12) if callback.due_after_validation(trainer(e))] == [4, 9]
    assert not callback.due_after_validation(trainer(4, sanity=True))
    assert not callback.due_after_validation(trainer(4, loggers=[CSVLogger(str(tmp_path))]))
    callback.mark_drawn(trainer(9))
    assert not callback.due_at_end(trainer(9))  # the last validation already drew this state
    assert callback.due_at_end(trainer(11))


# -------------------------------------------------------------------------------- confusion
def test_confused_pairs_rank_by_share_of_the_true_class():
    counts = np.zeros((7, 7), int)
    np.fill_diagonal(counts, 50)
    counts[2, 4] = 18  # fear -> sad: 18 of 68
    counts[3, 6] = 20  # happy -> neutral: 20 of 170 (more images, smaller share)
    counts[3, 3] = 150
    pairs = confused_pairs(counts, CLASS_NAMES, top=3)
    assert [(p.true_class, p.predicted_class) for p in pairs] == [("fear", "sad"), ("happy", "neutral")]
    assert pairs[0].sentence() == "fear is mistaken for sad in 26% of fear images (18 of 68)"
    assert confused_pairs(np.eye(7, dtype=int) * 5, CLASS_NAMES) == []


def test_confusion_matrix_rows_are_normalised_and_drawn():
    counts = np.array([[3, 1], [0, 0]])
    assert row_normalized(counts).tolist() == [[0.75, 0.25], [0.0, 0.0]]  # an empty class stays 0
    pixels = figure_to_array(confusion_matrix_figure(np.eye(7, dtype=int), CLASS_NAMES))
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3
    assert pixels.std() > 10  # something was drawn


# ------------------------------------------------------------------------------ attribution
def small_net() -> ReportCNN:
    torch.manual_seed(0)
    return ReportCNN(channels=[4, 4, 8, 8, 8, 8, 8], hidden=[16, 16], dropout=0.5)


@pytest.mark.parametrize("method", METHODS)
def test_attribution_works_inside_validation_and_leaves_the_network_as_it_was(method):
    net = small_net().train()
    with torch.inference_mode():  # what Lightning's validation loop runs under; its batches too
        images = torch.rand(3, 1, 48, 48)
        first = attribute(net, images, [0, 3, 6], method, ig_steps=4)
        again = attribute(net, images, [0, 3, 6], method, ig_steps=4)
    assert first.shape == (3, 48, 48) and first.dtype == torch.float32
    assert torch.isfinite(first).all() and (first >= 0).all() and first.sum() > 0
    assert torch.equal(first, again)  # eval mode: no dropout noise in the maps
    assert all(m.training for m in net.modules())  # train mode restored
    assert all(p.grad is None for p in net.parameters())  # training's gradients untouched


@pytest.mark.parametrize("method", ["saliency", "integrated_gradients"])
def test_attribution_points_at_the_pixels_the_class_depends_on(method):
    # Class 3's logit reads one rectangle of pixels only; every other pixel must get no attribution.
    net = nn.Sequential(nn.Flatten(), nn.Linear(48 * 48, 7, bias=False))
    region = np.zeros((48, 48), bool)
    region[30:38, 10:30] = True  # "the mouth"
    with torch.no_grad():
        net[1].weight.zero_()
        net[1].weight[3] = torch.from_numpy(region.ravel()).float()
    images = torch.rand(4, 1, 48, 48) + 0.1
    maps = attribute(net, images, [3] * 4, method, ig_steps=4).numpy()
    assert (maps[:, ~region] == 0).all() and (maps[:, region] > 0).all()
    np.testing.assert_allclose(mass_inside(maps, np.broadcast_to(region, maps.shape)), 1 / region.mean())


def test_attribution_refuses_unknown_methods():
    with pytest.raises(ConfigError, match="method='occlusion'"):
        attribute(small_net(), torch.rand(1, 1, 48, 48), [0], "occlusion")


def test_mass_inside_is_one_for_uniform_maps():
    maps = np.ones((2, 48, 48))
    masks = np.zeros((2, 48, 48), bool)
    masks[:, :12] = True
    np.testing.assert_allclose(mass_inside(maps, masks), [1.0, 1.0])
    assert np.isnan(mass_inside(np.zeros((1, 48, 48)), masks[:1])).all()  # no gradient: no score at all


def test_examples_are_the_first_of_each_class():
    labels = np.array([2, 0, 2, 1, 0, 2, 0])
    assert examples_per_class(labels, 2, 4).tolist() == [1, 4, 3, 0, 2]  # class 3 has none


# ------------------------------------------------------------------------------ filter pictures
def test_gradient_ascent_raises_each_filters_activation():
    net = small_net().eval()
    layer = conv_layer(net, -1)
    filters = [0, 2, 5]
    generator = torch.Generator().manual_seed(0)
    start = (0.5 + 0.1 * torch.randn(3, 1, 48, 48, generator=generator)).clamp(0, 1)
    pictures = maximize_filters(net, layer, filters, steps=25, seed=0)
    assert pictures.shape == (3, 1, 48, 48)
    assert pictures.min() >= 0 and pictures.max() <= 1
    assert (filter_response(net, layer, pictures, filters) > filter_response(net, layer, start, filters)).all()
    assert torch.equal(pictures, maximize_filters(net, layer, filters, steps=25, seed=0))  # repeatable
    assert all(p.grad is None for p in net.parameters())


def test_filter_and_layer_choices_are_checked():
    net = small_net()
    last = conv_layer(net, -1)
    assert last is net.last_conv and conv_layer(net, 0) is net.conv_layers()[0]
    assert choose_filters(last, 16) == list(range(8))  # capped at the layer's width
    assert choose_filters(last, [7, 1]) == [7, 1]
    with pytest.raises(ConfigError, match="indices in 0..7"):
        choose_filters(last, [8])
    with pytest.raises(ConfigError, match="7 conv layers"):
        conv_layer(net, 7)


@pytest.mark.slow
def test_captum_and_matplotlib_load_only_when_a_figure_is_made():
    # (torchmetrics, and so Lightning, imports matplotlib itself; the analysis modules must not.)
    code = (
        "import sys\n"
        "import fer_lightning.explain.attribution, fer_lightning.viz.figures\n"
        "import fer_lightning.explain.filter_visualization, fer_lightning.viz.html_page\n"
        "print(sorted(m for m in ('captum', 'matplotlib') if m in sys.modules))\n"
        "import fer_lightning.callbacks, fer_lightning.reporting.run_report\n"
        "print('captum' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["[]", "False"]
