"""The report of a finished run, or of a model shipped with the package: overview, history,
confusion matrix, saliency maps, filter pictures and the model table, as ``index.html`` with every
figure also as a PNG.

A run's report comes from its directory: the checkpoint, ``.hydra/config.yaml`` (the data it was
trained on), ``metrics.json`` and the TensorBoard event files. A shipped model's comes from its
entry in ``fer_lightning/pretrained/models.json`` (its history is stored there) and the data named
on the command line. Predictions go through the one inference path evaluate and predict use.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from fer_lightning.checkpoints.shipped import is_pretrained, output_anchor, pretrained_entry
from fer_lightning.errors import ConfigError
from fer_lightning.runs.saved_run import RUN_CONFIG, FinishedRun, open_finished_run, read_history, run_data_config

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- the subject
@dataclass
class ReportSubject:
    """What a report is about: a checkpoint, the data it is shown on and what is known of its training."""

    title: str
    subtitle: str
    checkpoint: str  # a checkpoint file, or pretrained[:<name>]
    data: dict[str, Any]  # plain data settings (see fer_lightning.data.settings)
    overview: list[tuple[str, Any]]
    history: dict[str, list[tuple[int, float]]]
    output_dir: Path
    texts: list[tuple[str, str, str]] = field(default_factory=list)  # (anchor, title, text)


def percent(value: Any) -> str:
    return "-" if value is None else f"{float(value):.2%}"


def run_subject(run: FinishedRun, cfg: DictConfig) -> ReportSubject:
    checkpoint = run.checkpoint(str(cfg.checkpoint))
    m = run.metrics
    overview = [
        ("status", m.get("status")),
        ("best validation accuracy", percent(m.get("best_val_acc"))),
        ("best epoch", m.get("best_epoch")),
        ("test accuracy", percent(m.get("test_acc"))),
        ("epochs completed", m.get("epochs_completed")),
        ("training time", f"{m['train_seconds']:.0f} s" if m.get("train_seconds") else "-"),
        ("checkpoint", str(checkpoint)),
        ("overrides", " ".join(m.get("overrides") or []) or "(defaults)"),
    ]
    return ReportSubject(
        title=f"Run report: {run.path.name}", subtitle=str(run.path.resolve()), checkpoint=str(checkpoint),
        data=given_data(cfg) or run_data_config(run.path), overview=overview,
        history=read_history(run.path / "tensorboard"), output_dir=run.path / "report",
        texts=[("config", "Configuration", run.config_text),
               ("metrics", "metrics.json", json.dumps(run.metrics, indent=2, sort_keys=True))],
    )


def pretrained_subject(cfg: DictConfig) -> ReportSubject:
    entry = pretrained_entry(cfg.run_dir)
    data = given_data(cfg)
    if data is None:
        raise ConfigError(f"run_dir={cfg.run_dir}: name the data to show it on, for example "
                          f"{entry['evaluate_data']} (the data it was trained on)")
    overview = [
        ("model", f"pretrained:{entry['name']}"),
        ("validation accuracy (as shipped)", percent(entry.get("val_accuracy"))),
        ("best epoch", entry.get("best_epoch")),
        ("epochs trained", entry.get("epochs")),
        ("training time", entry.get("training_time", "-")),
        ("hardware", entry.get("hardware", "-")),
        ("trained with", entry.get("command", "-")),
    ]
    history = {tag: [(int(epoch), float(value)) for epoch, value in rows]
               for tag, rows in (entry.get("history") or {}).items()}
    return ReportSubject(
        title=f"Model report: pretrained:{entry['name']}", subtitle=str(entry.get("trained_on", "")),
        checkpoint=str(cfg.run_dir), data=data, overview=overview, history=history,
        output_dir=output_anchor(cfg.run_dir).with_suffix("") / "report",
        texts=[("card", "Registry entry", json.dumps({k: v for k, v in entry.items() if k != "history"},
                                                     indent=2, sort_keys=True))],
    )


def given_data(cfg: DictConfig) -> dict[str, Any] | None:
    """Data named on the command line (data=<group> ...), as plain settings; None when none was."""
    data = cfg.get("data")
    if not data:
        return None
    settings = OmegaConf.to_container(data, resolve=True)
    return settings if "_target_" in settings else None


# ---------------------------------------------------------------------------- sections
def _figure(filename: str, figure: Any, caption: str = "") -> Any:
    from fer_lightning.viz.figures import figure_to_png
    from fer_lightning.viz.html_page import ReportFigure

    return ReportFigure(filename, figure_to_png(figure), caption)


def overview_section(subject: ReportSubject) -> Any:
    from fer_lightning.viz.html_page import Section, table

    return Section("overview", "Overview", [table(None, subject.overview)])


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


def history_section(subject: ReportSubject) -> Any:
    from fer_lightning.viz.figures import history_figure
    from fer_lightning.viz.html_page import Section, paragraph

    if not subject.history:
        return Section("history", "Training history", [paragraph("No training history was recorded.")])
    return Section("history", "Training history", [
        _figure("history.png", history_figure(subject.history), "accuracy and loss per epoch, train and validation"),
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
        conv_map_sizes,
        describe_layer,
        examples_per_class,
        gradcam_layer,
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
        layer, title = None, ""
        if method == "gradcam":
            image_size = tuple(images.shape[-2:])
            index = None if settings.layer is None else int(settings.layer)
            layer = gradcam_layer(net, index, "saliency.layer", image_size)
            title = f"Grad-CAM at {describe_layer(net, layer, conv_map_sizes(net, image_size)[layer])}"
        maps = attribute(net, images, targets, method, layer=layer, ig_steps=int(settings.ig_steps))
        figure = saliency_figure(images[:, 0].numpy(), maps.numpy(), captions, method, title)
        parts.append(_figure(f"saliency_{method}.png", figure, method.replace("_", " ")))
    return Section("saliency", "Saliency maps", parts), images[0]


def filter_ascent(settings: DictConfig) -> dict[str, Any]:
    from fer_lightning.explain.filter_visualization import ascent_settings

    return ascent_settings("filters", steps=settings.steps, lr=settings.lr, decay=settings.decay,
                           blur_every=settings.blur_every, blur_sigma=settings.blur_sigma, jitter=settings.jitter)


def filters_section(net: torch.nn.Module, image: torch.Tensor, settings: DictConfig) -> Any:
    from fer_lightning.explain.attribution import conv_layer, describe_layer
    from fer_lightning.explain.filter_visualization import choose_filters, feature_maps, maximize_filters
    from fer_lightning.viz.figures import feature_maps_figure, filters_figure
    from fer_lightning.viz.html_page import Section, paragraph

    layer = conv_layer(net, int(settings.layer), "filters.layer")
    filters = settings.filters if isinstance(settings.filters, int) else list(settings.filters)
    chosen = choose_filters(layer, filters, "filters.filters")
    name = describe_layer(net, layer)
    pictures = maximize_filters(net, layer, chosen, **filter_ascent(settings))
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
def report_target(cfg: DictConfig) -> None:
    """``ckpt_path`` (or its older name ``run_dir``) as the run directory and checkpoint the report reads:
    a checkpoint file inside a run names both."""
    given, older = cfg.get("ckpt_path"), cfg.get("run_dir")
    if given and older and str(given) != str(older):
        raise ConfigError(f"ckpt_path={given} and run_dir={older} name two models; give ckpt_path alone")
    source = given or older
    if not source:
        raise ConfigError("ckpt_path must be set: fer report outputs/runs/<name>/<key> "
                          "(or ckpt_path=pretrained data=fer2013)")
    with open_dict(cfg):
        cfg.run_dir = str(source)
        path = Path(str(source))
        if not is_pretrained(source) and path.is_file() and (path.parent.parent / RUN_CONFIG).is_file():
            cfg.run_dir, cfg.checkpoint = str(path.parent.parent), str(path)


def build_report(cfg: DictConfig, progress: Callable[[str], None] = log.info) -> Path:
    """Write the report of ``cfg.run_dir`` (a run directory, or ``pretrained[:<name>]``); return its index.html."""
    from fer_lightning.checkpoints.predictor import load_predictor
    from fer_lightning.data.datasets import ImageArrayDataset
    from fer_lightning.explain.attribution import classifier_network
    from fer_lightning.inference.scoring import (
        check_split,
        classification_metrics,
        load_split,
        predict_probabilities,
    )
    from fer_lightning.viz.html_page import write_report

    report_target(cfg)
    split = check_split(str(cfg.split))
    filter_ascent(cfg.filters)  # checked before minutes of work, not when its section comes
    subject = pretrained_subject(cfg) if is_pretrained(cfg.run_dir) else run_subject(open_finished_run(cfg.run_dir), cfg)
    device = torch.device(str(cfg.device))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={cfg.device}: no CUDA device here; use device=cpu")
    predictor = load_predictor(subject.checkpoint)
    if predictor.kind != "model":
        raise ConfigError(f"checkpoint={subject.checkpoint}: a report explains one network, not an ensemble")
    probabilities_of = predictor.module.to(device)
    net = classifier_network(predictor.module.members[0])
    names = list(predictor.class_names)
    progress(f"reading the {split} split")
    images = load_split(subject.data, split)
    if images.labels is None:
        raise ConfigError(f"split={split}: {images.description} has no labels to compare with")

    progress("confusion matrix")
    probabilities = predict_probabilities(probabilities_of, images.images, transform=images.transform, device=device)
    counts = np.asarray(classification_metrics(probabilities, images.labels, tuple(names))["confusion_matrix"])
    sections = [
        overview_section(subject),
        history_section(subject),
        confusion_section(counts, names, split, int(cfg.top_pairs)),
    ]
    progress("saliency maps")
    dataset = ImageArrayDataset(images.images, images.labels, images.transform)
    saliency, first_image = saliency_section(net, dataset, names, cfg.saliency)
    sections.append(saliency)
    progress("filter pictures")
    sections.append(filters_section(net, first_image, cfg.filters))
    sections.append(model_section(net))
    sections += [text_section(anchor, title, text) for anchor, title, text in subject.texts]
    output = Path(cfg.output_dir).expanduser() if cfg.output_dir else subject.output_dir
    return write_report(output, subject.title, subject.subtitle, sections, embed=bool(cfg.embed_images))
