"""Figures of a run: history, confusion matrix, saliency maps, filter pictures and feature maps.

Builders return matplotlib ``Figure`` objects made without pyplot (no global state, no GUI backend,
safe in a training process); ``figure_to_array`` and ``figure_to_png`` turn them into what
TensorBoard and an HTML page take. matplotlib is imported inside the functions: importing this module
costs nothing until a figure is drawn.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fer_lightning.classes import NUM_CLASSES

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100


def new_figure(width: float, height: float) -> Figure:
    """A figure drawn by the Agg rasteriser, whatever backend pyplot would pick."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def figure_to_array(figure: Figure) -> np.ndarray:
    """(H, W, 3) uint8 RGB pixels of the drawn figure."""
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()


def figure_to_png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


# ------------------------------------------------------------------------------------ confusion
@dataclass(frozen=True)
class ConfusedPair:
    true_class: str
    predicted_class: str
    count: int
    total: int  # images of the true class

    @property
    def fraction(self) -> float:
        return self.count / self.total if self.total else 0.0

    def sentence(self) -> str:
        return (
            f"{self.true_class} is mistaken for {self.predicted_class} in {self.fraction:.0%} of "
            f"{self.true_class} images ({self.count} of {self.total})"
        )


def row_normalized(counts: np.ndarray) -> np.ndarray:
    """Each row divided by its sum: entry (t, p) is the share of class-t images predicted as p."""
    counts = np.asarray(counts, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def confused_pairs(counts: np.ndarray, class_names: Sequence[str], top: int = 3) -> list[ConfusedPair]:
    """The ``top`` off-diagonal (true, predicted) pairs by share of the true class, largest first."""
    counts = np.asarray(counts, dtype=np.int64)
    totals = counts.sum(axis=1)
    shares = row_normalized(counts)
    np.fill_diagonal(shares, 0.0)
    order = np.argsort(-shares, axis=None, kind="stable")
    pairs = []
    for flat in order[:top]:
        t, p = np.unravel_index(flat, shares.shape)
        if shares[t, p] == 0:  # the rest are correct predictions or pairs that never happen
            break
        pairs.append(ConfusedPair(class_names[t], class_names[p], int(counts[t, p]), int(totals[t])))
    return pairs


def confusion_matrix_figure(counts: np.ndarray, class_names: Sequence[str], title: str = "") -> Figure:
    """Row-normalised confusion matrix (rows: true class) with the share in each cell."""
    shares = row_normalized(counts)
    size = 1.0 + 0.75 * len(class_names)
    figure = new_figure(size + 1.2, size)
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    ticks = np.arange(len(class_names))
    axes.set_xticks(ticks, class_names, rotation=45, ha="right")
    axes.set_yticks(ticks, class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for (t, p), share in np.ndenumerate(shares):
        axes.text(p, t, f"{share:.2f}", ha="center", va="center", fontsize=8,
                  color="white" if share > 0.5 else "black")
    total = int(np.asarray(counts).sum())
    accuracy = np.trace(np.asarray(counts)) / total if total else 0.0
    axes.set_title(title or f"confusion matrix (n={total}, accuracy {accuracy:.1%})")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of the true class")
    return figure


# ------------------------------------------------------------------------------------ saliency
def normalize_map(values: np.ndarray) -> np.ndarray:
    """Scale one map to [0, 1] by its 99th percentile, so one hot pixel does not wash out the rest."""
    values = np.abs(np.asarray(values, dtype=np.float64))
    top = np.percentile(values, 99)
    return np.clip(values / top, 0.0, 1.0) if top > 0 else np.zeros_like(values)


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """RGB: the grayscale image with the normalised map on top (more opaque where it is hot)."""
    from matplotlib import colormaps

    gray = np.repeat(np.clip(image, 0.0, 1.0)[..., None], 3, axis=2)
    heat = normalize_map(heat)
    colored = colormaps["inferno"](heat)[..., :3]
    weight = alpha * heat[..., None]
    return (1.0 - weight) * gray + weight * colored


def saliency_figure(
    images: np.ndarray, attributions: np.ndarray, captions: Sequence[str], method: str, title: str = ""
) -> Figure:
    """One column per image; rows: image, attribution map, overlay. Images and maps are ``(N, H, W)``.

    ``title``: what the maps were computed from (Grad-CAM's layer and map size), above the grid.
    """
    count = len(images)
    figure = new_figure(1.3 * count + 0.6, 4.7 if title else 4.4)
    if title:
        figure.suptitle(title, fontsize=9)
    grid = figure.subplots(3, count, squeeze=False)
    for column in range(count):
        panels = (
            (images[column], "gray", (0.0, 1.0)),
            (normalize_map(attributions[column]), "inferno", (0.0, 1.0)),
            (overlay(images[column], attributions[column]), None, (None, None)),
        )
        for row, (picture, cmap, (low, high)) in enumerate(panels):
            axes = grid[row, column]
            axes.imshow(picture, cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
            axes.set_xticks([])
            axes.set_yticks([])
        grid[0, column].set_title(captions[column], fontsize=8)
    for row, name in enumerate(("image", method, "overlay")):
        grid[row, 0].set_ylabel(name, fontsize=9)
    return figure


# -------------------------------------------------------------------------- filters and maps
def image_grid_figure(
    pictures: np.ndarray, captions: Sequence[str], title: str, cmap: str | Sequence[str] = "gray",
    columns: int = 8, per_image_scale: bool = True,
) -> Figure:
    """Small multiples of ``(N, h, w)`` pictures; each scaled to its own range unless told otherwise.

    ``cmap``: one colormap for all, or one per picture.
    """
    count = len(pictures)
    cmaps = [cmap] * count if isinstance(cmap, str) else list(cmap)
    columns = max(1, min(columns, count))
    rows = int(np.ceil(count / columns))
    figure = new_figure(1.25 * columns, 1.35 * rows + 0.4)
    grid = figure.subplots(rows, columns, squeeze=False)
    low, high = (None, None) if per_image_scale else (float(np.min(pictures)), float(np.max(pictures)))
    for index, axes in enumerate(grid.flat):
        axes.set_xticks([])
        axes.set_yticks([])
        if index >= count:
            axes.set_axis_off()
            continue
        axes.imshow(pictures[index], cmap=cmaps[index], vmin=low, vmax=high, interpolation="nearest")
        axes.set_title(captions[index], fontsize=8)
    figure.suptitle(title, fontsize=10)
    return figure


def filters_figure(pictures: np.ndarray, filters: Sequence[int], layer_name: str) -> Figure:
    """Inputs that maximise each filter, ``(F, H, W)`` in [0, 1], on a common gray scale."""
    return image_grid_figure(
        pictures, [f"filter {f}" for f in filters], f"inputs that most activate {layer_name}",
        cmap="gray", per_image_scale=False,
    )


def feature_maps_figure(
    image: np.ndarray, maps: np.ndarray, filters: Sequence[int], layer_name: str
) -> Figure:
    """The input image followed by the chosen filters' output maps for it."""
    import cv2

    pictures = [np.asarray(image, dtype=np.float32)] + [np.asarray(m, dtype=np.float32) for m in maps]
    height, width = pictures[0].shape
    # Nearest upsampling so that coarse maps (3x3 at the last layer) fill the same space as the image.
    pictures = [cv2.resize(p, (width, height), interpolation=cv2.INTER_NEAREST) for p in pictures]
    captions = ["input"] + [f"filter {f}" for f in filters]
    cmaps = ["gray"] + ["viridis"] * len(maps)
    columns = int(np.ceil(len(pictures) / np.ceil(len(pictures) / 9)))  # rows as evenly filled as can be
    return image_grid_figure(np.stack(pictures), captions, f"feature maps at {layer_name}", cmaps, columns)


# ------------------------------------------------------------------------------------- history
# Each chart of a run's history puts train and validation of one quantity together: the report's
# history figure and TensorBoard's custom-scalars layout both draw these.
HISTORY_CHARTS: dict[str, tuple[str, str]] = {
    "accuracy": ("acc/train", "acc/val"),
    "loss": ("loss/train", "loss/val"),
}


def history_figure(
    history: Mapping[str, Sequence[tuple[float, float]]], num_classes: int = NUM_CLASSES
) -> Figure:
    """Accuracy and loss per epoch, train against validation. ``history``: tag -> [(epoch, value)].

    Accuracy is drawn on a fixed 0-1 axis beside the chance level (1 / ``num_classes``), so that a run
    stuck at chance reads as flat rather than as wild swings; the loss axis fits its values.
    """
    from matplotlib.ticker import MaxNLocator

    figure = new_figure(10.0, 3.8)
    panels = figure.subplots(1, 2, squeeze=False)[0]
    for axes, (chart, tags) in zip(panels, HISTORY_CHARTS.items()):
        for tag, style in zip(tags, ("-o", "-s")):
            points = history.get(tag) or []
            if points:
                epochs, values = zip(*points)
                axes.plot(epochs, values, style, markersize=3, label=tag.split("/")[-1])
        if chart == "accuracy":
            chance = 1.0 / num_classes
            axes.axhline(chance, color="gray", linestyle="--", linewidth=1,
                         label=f"chance (1/{num_classes} = {chance:.1%})")
            axes.set_ylim(0.0, 1.0)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel(chart if chart == "accuracy" else "cross-entropy loss")
        axes.set_title(chart)
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend()
    return figure


def accuracy_over_time_figure(
    curves: Mapping[str, Sequence[tuple[float, float]]], budget_minutes: float | None = 60.0,
    target: float | None = None, title: str = "", median_epochs: bool = False,
) -> Figure:
    """Validation accuracy against wall-clock minutes of training, one line per run.

    ``curves``: label -> [(minutes since training started, accuracy)], one point per epoch. The budget
    and the target are drawn as guides, so what each recipe reaches within the budget reads at a glance.
    """
    figure = new_figure(8.0, 4.8)
    axes = figure.subplots()
    for label, points in curves.items():
        if points:
            minutes, values = zip(*points)
            line, = axes.plot(minutes, values, "-o", markersize=3, label=label)
            best = max(range(len(values)), key=values.__getitem__)
            axes.annotate(f"{values[best]:.1%}", (minutes[best], values[best]), textcoords="offset points",
                          xytext=(0, 6), ha="center", fontsize=8, color=line.get_color())
    if budget_minutes:
        axes.axvline(budget_minutes, color="gray", linestyle="--", linewidth=1, label=f"{budget_minutes:g} min budget")
    if target:
        axes.axhline(target, color="gray", linestyle=":", linewidth=1, label=f"target {target:.0%}")
    axes.set_xlabel("minutes of training, each epoch at its run's median epoch time" if median_epochs
                    else "wall-clock minutes of training (epochs with validation)")
    axes.set_ylabel("validation accuracy")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    return figure


def track_timeline_figure(tracks: Mapping[int, tuple[Sequence[float], Sequence[str], Sequence[float]]],
                          class_names: Sequence[str], title: str = "") -> Figure:
    """A video's faces over time, one line per track: above, the label it shows (its smoothed most
    probable class); below, that label's probability.

    ``tracks``: track number -> (seconds of each analysed frame it was seen in, its label there, the
    label's probability). A track unseen for a while is drawn with a gap rather than a made-up line.
    """
    figure = new_figure(10.0, 5.2)
    label_axes, probability_axes = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1.3, 1]})
    rows = {name: index for index, name in enumerate(class_names)}
    # Tracks showing the same label are drawn a little apart, so that none hides another.
    spread = min(0.3, 0.6 / max(1, len(tracks)))
    for order, (number, (times, labels, probabilities)) in enumerate(sorted(tracks.items())):
        times = np.asarray(times, dtype=float)
        # A gap longer than three of the track's usual steps: the face was away, so the line breaks.
        steps = np.diff(times)
        breaks = np.flatnonzero(steps > 3 * np.median(steps)) + 1 if len(steps) else []
        values = np.array([rows[label] for label in labels], dtype=float) + (order - (len(tracks) - 1) / 2) * spread
        chances = np.asarray(probabilities, dtype=float)
        times, values, chances = (np.insert(a, breaks, np.nan) for a in (times, values, chances))
        line, = label_axes.step(times, values, where="post", linewidth=2, label=f"track {number}")
        probability_axes.plot(times, chances, color=line.get_color(), linewidth=1.5)
    label_axes.set_yticks(range(len(class_names)), list(class_names))
    label_axes.set_ylim(-0.5, len(class_names) - 0.5)
    label_axes.set_title(title or "Expression over time, one line per face")
    label_axes.grid(alpha=0.3)
    if tracks:
        label_axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    probability_axes.set_ylim(0.0, 1.0)
    probability_axes.set_xlabel("time (s)")
    probability_axes.set_ylabel("probability of the label")
    probability_axes.grid(alpha=0.3)
    return figure


def video_tracks(table: str | Path) -> tuple[dict[int, tuple[list[float], list[str], list[float]]], list[str]]:
    """From predict's per-frame table of a video: for each track, the times it was seen, its label
    and that label's probability there; and the class names (the columns after ``label``)."""
    import csv

    with open(table, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        end = header.index("uncertain") if "uncertain" in header else len(header)
        names = header[header.index("label") + 1:end]
        tracks: dict[int, tuple[list[float], list[str], list[float]]] = {}
        for row in reader:
            record = dict(zip(header, row))
            if not record["label"]:
                continue
            times, labels, chances = tracks.setdefault(int(record.get("track") or 0), ([], [], []))
            times.append(float(record["time"]))
            labels.append(record["label"])
            chances.append(float(record[record["label"]]))
    return tracks, names


def reliability_figure(before: Mapping[str, Sequence[float]], after: Mapping[str, Sequence[float]],
                       temperature: float, ece_before: float, ece_after: float) -> Figure:
    """A reliability diagram: per confidence bin, the accuracy against the mean confidence, before and
    after temperature scaling (a calibrated model lies on the diagonal); below, the share of faces in
    each bin."""
    figure = new_figure(6.0, 6.0)
    curve_axes, share_axes = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    curve_axes.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1, label="calibrated")
    for table, name, color in ((before, f"T = 1 (ECE {ece_before:.3f})", "tab:blue"),
                               (after, f"T = {temperature:.3f} (ECE {ece_after:.3f})", "tab:orange")):
        confidence, accuracy = np.asarray(table["confidence"], float), np.asarray(table["accuracy"], float)
        kept = np.isfinite(confidence)
        curve_axes.plot(confidence[kept], accuracy[kept], marker="o", color=color, label=name)
    curve_axes.set_xlim(0, 1)
    curve_axes.set_ylim(0, 1)
    curve_axes.set_ylabel("accuracy")
    curve_axes.set_title("Reliability: accuracy against confidence")
    curve_axes.grid(alpha=0.3)
    curve_axes.legend(loc="upper left", fontsize="small")
    lower, upper = np.asarray(before["lower"], float), np.asarray(before["upper"], float)
    share_axes.bar(lower, before["share"], width=upper - lower, align="edge", alpha=0.5, color="tab:blue")
    share_axes.bar(lower, after["share"], width=upper - lower, align="edge", alpha=0.5, color="tab:orange")
    share_axes.set_xlabel("confidence (probability of the label)")
    share_axes.set_ylabel("share of faces")
    return figure


def face_panels_figure(crops: Sequence[np.ndarray], attributions: Sequence[np.ndarray],
                       probabilities: Sequence[Mapping[str, float]], method: str) -> Figure:
    """One row per face: its 48x48 crop under the attribution map, and its probabilities as bars
    (the predicted class highlighted)."""
    rows = max(1, len(crops))
    figure = new_figure(7.5, 2.4 * rows)
    grid = figure.subplots(rows, 2, squeeze=False, gridspec_kw={"width_ratios": [1, 2.2]})
    for number, (crop, heat, probs, (image_axes, bar_axes)) in enumerate(
        zip(crops, attributions, probabilities, grid), start=1
    ):
        image_axes.imshow(overlay(np.asarray(crop, dtype=np.float64) / 255.0, heat))
        image_axes.set_title(f"face {number}: {method}", fontsize="small")
        image_axes.axis("off")
        names, values = list(probs), [probs[name] for name in probs]
        best = int(np.argmax(values))
        colors = ["tab:orange" if i == best else "tab:blue" for i in range(len(values))]
        bar_axes.barh(names, values, color=colors)
        bar_axes.invert_yaxis()
        bar_axes.set_xlim(0.0, 1.0)
        for i, value in enumerate(values):
            bar_axes.text(min(value + 0.02, 0.85), i, f"{value:.0%}", va="center", fontsize="small")
        bar_axes.set_xlabel("probability")
    return figure
