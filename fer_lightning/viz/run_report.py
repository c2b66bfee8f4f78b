"""The report of a finished run: model table, config, metrics, history, confusion matrix, saliency
maps and filter pictures, as ``<run_dir>/report/index.html`` with every figure also as a PNG.

Everything comes from the run directory: the checkpoint, ``.hydra/config.yaml`` (to rebuild the
data module the run trained on), ``metrics.json`` and the TensorBoard event files.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from fer_lightning.data.settings import datamodule_from_settings
from fer_lightning.errors import ConfigError, FerError
from fer_lightning.runs.saved_run import FinishedRun, open_finished_run

log = logging.getLogger(__name__)

HISTORY_TAGS = ("acc/train", "acc/val", "loss/train", "loss/val")


def read_history(log_dir: Path, tags: Sequence[str] = HISTORY_TAGS) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(epoch, value)] from the TensorBoard event files in ``log_dir`` (a resumed run's too)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logging.getLogger("tensorboard").setLevel(logging.WARNING)  # one line per event file otherwise

    if not log_dir.is_dir() or not any(log_dir.glob("events.out.tfevents.*")):
        return {}
    accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    present = set(accumulator.Tags().get("scalars", []))
    # Lightning logs the epoch beside every metric: it maps a step to its epoch.
    epoch_at = {e.step: int(e.value) for e in accumulator.Scalars("epoch")} if "epoch" in present else {}
    history = {}
    for tag in tags:
        if tag in present:
            by_epoch = {epoch_at.get(e.step, i): e.value for i, e in enumerate(accumulator.Scalars(tag))}
            history[tag] = sorted(by_epoch.items())  # a resumed epoch keeps its last value
    return history


# ------------------------------------------------------------------------ computations
def evaluation_loader(run: FinishedRun, split: str) -> Any:
    """The run's ``split`` as its evaluation loader sees it (eval transform applied)."""
    if split not in ("val", "test"):
        raise ConfigError(f"split={split!r} is not allowed: val or test")
    settings = OmegaConf.to_container(run.config.data, resolve=True)
    datamodule = datamodule_from_settings(settings, where=str(run.path / ".hydra" / "config.yaml"))
    datamodule.setup("validate")
    if not datamodule.has_split(split):
        raise FerError(f"split={split}: the data this run trained on has no labelled {split} split")
    loader = datamodule.val_dataloader() if split == "val" else datamodule.test_dataloader()
    return loader


def confusion_counts(model: torch.nn.Module, loader: Any, num_classes: int, device: torch.device) -> np.ndarray:
    from torchmetrics.functional.classification import multiclass_confusion_matrix

    predictions, labels = [], []
    with torch.inference_mode():
        for images, target in loader:
            predictions.append(model(images.to(device)).argmax(dim=1).cpu())
            labels.append(torch.as_tensor(target))
    return multiclass_confusion_matrix(torch.cat(predictions), torch.cat(labels), num_classes).numpy()


# ---------------------------------------------------------------------------- sections
def _figure(filename: str, figure: Any, caption: str = "") -> Any:
    from fer_lightning.viz.figures import figure_to_png
    from fer_lightning.viz.html_page import ReportFigure

    return ReportFigure(filename, figure_to_png(figure), caption)


def overview_section(run: FinishedRun, checkpoint: Path) -> Any:
    from fer_lightning.viz.html_page import Section, table

    m = run.metrics

    def percent(value: Any) -> str:
        return "-" if value is None else f"{float(value):.2%}"

    rows = [
        ("status", m.get("status")),
        ("best validation accuracy", percent(m.get("best_val_acc"))),
        ("best epoch", m.get("best_epoch")),
        ("test accuracy", percent(m.get("test_acc"))),
        ("epochs completed", m.get("epochs_completed")),
        ("training time", f"{m['train_seconds']:.0f} s" if m.get("train_seconds") else "-"),
        ("checkpoint", str(checkpoint)),
        ("overrides", " ".join(m.get("overrides") or []) or "(defaults)"),
    ]
    return Section("overview", "Overview", [table(None, rows)])


def model_section(net: torch.nn.Module) -> Any:
    from fer_lightning.viz.html_page import Section, paragraph, table
    from fer_lightning.viz.model_table import summarize

    rows = summarize(net)
    body = [(r.name, r.kind, " x ".join(map(str, r.output_shape)), f"{r.params:,}") for r in rows]
    total = sum(r.params for r in rows)
    return Section("model", "Model", [
        paragraph(f"{type(net).__name__}: {len(rows)} layers, {total:,} parameters; input 1 x 48 x 48."),
        table(("Layer", "Kind", "Output shape", "Parameters"), body, numeric=(3,)),
    ])


def history_section(run: FinishedRun) -> Any:
    from fer_lightning.viz.figures import history_figure
    from fer_lightning.viz.html_page import Section, paragraph

    history = read_history(run.path / "tensorboard")
    if not history:
        return Section("history", "Training history", [paragraph("No TensorBoard event files in this run.")])
    return Section("history", "Training history", [
        _figure("history.png", history_figure(history), "accuracy and loss per epoch, train and validation"),
    ])


def confusion_section(counts: np.ndarray, names: Sequence[str], split: str, top: int) -> Any:
    from fer_lightning.viz.figures import confused_pairs, confusion_matrix_figure, row_normalized
    from fer_lightning.viz.html_page import Section, bullet_list, paragraph, table

    total = int(counts.sum())
    accuracy = np.trace(counts) / total if total else 0.0
    shares = row_normalized(counts)
    pairs = confused_pairs(counts, names, top)
    per_class = []
    for t, name in enumerate(names):
        others = shares[t].copy()
        others[t] = -1.0
        worst = int(np.argmax(others))
        mistaken = f"{names[worst]} ({others[worst]:.0%})" if others[worst] > 0 else "-"
        per_class.append((name, int(counts[t].sum()), f"{shares[t, t]:.1%}", mistaken))
    return Section("confusion", "Confusion matrix", [
        paragraph(f"{split} split: {total} images, accuracy {accuracy:.2%}. Rows: true class; "
                  "each row sums to 1."),
        _figure("confusion_matrix.png",
                confusion_matrix_figure(counts, names, f"{split} split, accuracy {accuracy:.1%}")),
        paragraph("Most confused pairs:" if pairs else "No image was misclassified."),
        bullet_list([pair.sentence() + "." for pair in pairs]),
        table(("Class", "Images", "Recall", "Most often mistaken for"), per_class, numeric=(1, 2)),
    ])


def saliency_section(
    net: torch.nn.Module, dataset: Any, names: Sequence[str], settings: DictConfig
) -> tuple[Any, torch.Tensor]:
    """The section, and the first example image (the feature maps show it too)."""
    from fer_lightning.data.datasets import dataset_images, dataset_labels
    from fer_lightning.explain.attribution import (
        TARGETS,
        attribute,
        check_method,
        conv_layer,
        examples_per_class,
        predict_classes,
    )
    from fer_lightning.viz.figures import saliency_figure
    from fer_lightning.viz.html_page import Section, paragraph

    methods = [check_method(m, "saliency.methods") for m in settings.methods]
    if settings.target not in TARGETS:
        raise ConfigError(f"saliency.target={settings.target!r} is not allowed: one of {', '.join(TARGETS)}")
    labels = dataset_labels(dataset)
    chosen = examples_per_class(labels, int(settings.per_class), len(names))
    images, labels = dataset_images(dataset, chosen), labels[chosen]
    predicted = predict_classes(net, images).numpy()
    targets = labels if settings.target == "label" else predicted
    captions = [f"{names[t]}\n(pred {names[p]})" for t, p in zip(labels, predicted)]
    parts: list[Any] = [paragraph(
        f"The first {settings.per_class} image(s) of each class; the map explains the "
        f"{'true class' if settings.target == 'label' else 'predicted class'}. Brighter: the prediction "
        "depends more on that pixel."
    )]
    for method in methods:
        layer = conv_layer(net, int(settings.layer), "saliency.layer") if method == "gradcam" else None
        maps = attribute(net, images, targets, method, layer=layer, ig_steps=int(settings.ig_steps))
        figure = saliency_figure(images[:, 0].numpy(), maps.numpy(), captions, method)
        parts.append(_figure(f"saliency_{method}.png", figure, method.replace("_", " ")))
    return Section("saliency", "Saliency maps", parts), images[0]


def filters_section(net: torch.nn.Module, image: torch.Tensor, settings: DictConfig) -> Any:
    from fer_lightning.explain.attribution import conv_layer, describe_layer
    from fer_lightning.explain.filter_visualization import choose_filters, feature_maps, maximize_filters
    from fer_lightning.viz.figures import feature_maps_figure, filters_figure
    from fer_lightning.viz.html_page import Section, paragraph

    layer = conv_layer(net, int(settings.layer), "filters.layer")
    filters = settings.filters if isinstance(settings.filters, int) else list(settings.filters)
    chosen = choose_filters(layer, filters, "filters.filters")
    name = describe_layer(net, layer)
    pictures = maximize_filters(
        net, layer, chosen, steps=int(settings.steps), lr=float(settings.lr), decay=float(settings.decay),
        blur_every=int(settings.blur_every), blur_sigma=float(settings.blur_sigma), jitter=int(settings.jitter),
    )
    maps = feature_maps(net, layer, image, chosen)
    return Section("filters", "Filter pictures", [
        paragraph(f"Inputs that maximise the mean activation of {len(chosen)} filters of {name}, found by "
                  f"{settings.steps} steps of gradient ascent from noise (jitter, decay toward gray, blur)."),
        _figure("filters.png", filters_figure(pictures[:, 0].numpy(), chosen, name)),
        paragraph("The same filters' output maps for the first example image above."),
        _figure("feature_maps.png", feature_maps_figure(image[0].numpy(), maps.numpy(), chosen, name)),
    ])


def text_section(anchor: str, title: str, text: str) -> Any:
    from fer_lightning.viz.html_page import Section, code_block

    return Section(anchor, title, [code_block(text)])


# ------------------------------------------------------------------------------ command
def build_report(cfg: DictConfig, progress: Callable[[str], None] = log.info) -> Path:
    """Write the report of ``cfg.run_dir``; return the path of its index.html."""
    from fer_lightning.explain.attribution import classifier_network
    from fer_lightning.inference.checkpoint import load_classifier
    from fer_lightning.viz.html_page import write_report

    if OmegaConf.is_missing(cfg, "run_dir"):
        raise ConfigError("run_dir must be set: python -m fer_lightning.report run_dir=outputs/runs/<name>/<key>")
    run = open_finished_run(cfg.run_dir)
    checkpoint = run.checkpoint(str(cfg.checkpoint))
    device = torch.device(str(cfg.device))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={cfg.device}: no CUDA device here; use device=cpu")
    model = load_classifier(checkpoint).to(device)
    net = classifier_network(model)
    names = list(model.hparams.get("class_names") or [])
    progress(f"reading the {cfg.split} split the run trained with")
    loader = evaluation_loader(run, str(cfg.split))

    progress("confusion matrix")
    counts = confusion_counts(model, loader, len(names), device)
    sections = [
        overview_section(run, checkpoint),
        history_section(run),
        confusion_section(counts, names, str(cfg.split), int(cfg.top_pairs)),
    ]
    progress("saliency maps")
    saliency, first_image = saliency_section(net, loader.dataset, names, cfg.saliency)
    sections.append(saliency)
    progress("filter pictures")
    sections.append(filters_section(net, first_image, cfg.filters))
    sections += [
        model_section(net),
        text_section("config", "Configuration", run.config_text),
        text_section("metrics", "metrics.json", json.dumps(run.metrics, indent=2, sort_keys=True)),
    ]
    output = Path(cfg.output_dir).expanduser() if cfg.output_dir else run.path / "report"
    title = f"Run report: {run.path.name}"
    return write_report(output, title, str(run.path.resolve()), sections, embed=bool(cfg.embed_images))
