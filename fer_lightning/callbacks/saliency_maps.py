"""Saliency maps of a fixed set of validation images in TensorBoard, as training goes."""

from __future__ import annotations

import logging

import numpy as np
import pytorch_lightning as pl
import torch

from fer_lightning.callbacks.base import FigureCallback, class_names, validation_dataset
from fer_lightning.data.datasets import dataset_images, dataset_labels
from fer_lightning.errors import ConfigError
from fer_lightning.explain.attribution import (
    TARGETS,
    attribute,
    check_method,
    classifier_network,
    conv_map_sizes,
    describe_layer,
    examples_per_class,
    gradcam_layer,
    predict_classes,
)
from fer_lightning.viz.figures import saliency_figure

log = logging.getLogger(__name__)


class SaliencyMapsCallback(FigureCallback):
    """For ``per_class`` validation images of each class (the first ones, so the same every time):
    the image, its attribution map and an overlay, as one grid image.

    ``method``: saliency, integrated_gradients (``ig_steps`` steps) or gradcam (at conv layer
    ``layer``, -1 = last; None: the last one whose map is at least 12x12, see ``gradcam_layer``).
    ``target``: explain the true ``label`` or the ``predicted`` class.
    """

    def __init__(
        self,
        method: str = "saliency",
        per_class: int = 1,
        every_n_epochs: int | None = 5,
        at_end: bool = True,
        target: str = "label",
        ig_steps: int = 8,
        layer: int | None = None,
        tag: str = "figures/saliency",
    ) -> None:
        super().__init__(every_n_epochs, at_end, name="saliency")
        self.method = check_method(method, "callbacks.saliency.method")
        if target not in TARGETS:
            raise ConfigError(f"callbacks.saliency.target={target!r} is not allowed: one of {', '.join(TARGETS)}")
        if not isinstance(per_class, int) or per_class < 1:
            raise ConfigError(f"callbacks.saliency.per_class={per_class!r} is not allowed: a whole number >= 1")
        self.per_class = per_class
        self.target = target
        self.ig_steps = int(ig_steps)
        self.layer = None if layer is None else int(layer)
        self.tag = tag
        self._examples: tuple[torch.Tensor, np.ndarray] | None = None

    def examples(self, trainer: pl.Trainer, names: list[str]) -> tuple[torch.Tensor, np.ndarray] | None:
        """The fixed images and their labels, read once from the validation data."""
        if self._examples is None:
            dataset = validation_dataset(trainer)
            if dataset is None:
                log.warning("figures: no validation data, so no saliency maps")
                return None
            labels = dataset_labels(dataset)
            chosen = examples_per_class(labels, self.per_class, len(names))
            if len(chosen) == 0:
                return None
            self._examples = (dataset_images(dataset, chosen), labels[chosen])
        return self._examples

    def draw(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        names = class_names(pl_module)
        examples = self.examples(trainer, names)
        if examples is None:
            return
        images, labels = examples
        net = classifier_network(pl_module)
        predicted = predict_classes(net, images).numpy()
        targets = labels if self.target == "label" else predicted
        layer, title = None, ""
        if self.method == "gradcam":
            image_size = tuple(images.shape[-2:])
            layer = gradcam_layer(net, self.layer, "callbacks.saliency.layer", image_size)
            title = f"Grad-CAM at {describe_layer(net, layer, conv_map_sizes(net, image_size)[layer])}"
        maps = attribute(net, images, targets, self.method, layer=layer, ig_steps=self.ig_steps)
        captions = [f"{names[t]}\n(pred {names[p]})" for t, p in zip(labels, predicted)]
        figure = saliency_figure(images[:, 0].numpy(), maps.numpy(), captions, self.method, title)
        self.log_figure(trainer, self.tag, figure)
