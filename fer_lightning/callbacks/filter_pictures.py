"""Filter pictures in TensorBoard: inputs that most activate chosen filters, and their feature maps."""

from __future__ import annotations

from collections.abc import Sequence

import pytorch_lightning as pl

from fer_lightning.callbacks.base import FigureCallback, validation_dataset
from fer_lightning.data.datasets import dataset_images
from fer_lightning.explain.attribution import classifier_network, conv_layer, describe_layer
from fer_lightning.explain.filter_visualization import (
    ascent_settings,
    choose_filters,
    feature_maps,
    maximize_filters,
)
from fer_lightning.viz.figures import feature_maps_figure, filters_figure


class FilterPicturesCallback(FigureCallback):
    """At the end of training (and every ``every_n_epochs`` if set): for ``filters`` (a count: the
    first N, or a list of indices) of conv layer ``layer`` (-1 = last), the input found by
    ``steps`` steps of regularised gradient ascent, and the same filters' maps for the first
    validation image.
    """

    def __init__(
        self,
        layer: int = -1,
        filters: int | Sequence[int] = 16,
        steps: int = 32,
        lr: float = 0.05,
        decay: float = 0.01,
        blur_every: int = 4,
        blur_sigma: float = 0.5,
        jitter: int = 2,
        every_n_epochs: int | None = None,
        at_end: bool = True,
        tag: str = "figures/filters",
        maps_tag: str = "figures/feature_maps",
    ) -> None:
        super().__init__(every_n_epochs, at_end, name="filter_pictures")
        self.layer = int(layer)
        self.filters = filters if isinstance(filters, int) else [int(f) for f in filters]
        self.ascent = ascent_settings("callbacks.filter_pictures", steps=steps, lr=lr, decay=decay,
                                      blur_every=blur_every, blur_sigma=blur_sigma, jitter=jitter)
        self.tag = tag
        self.maps_tag = maps_tag

    def draw(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        net = classifier_network(pl_module)
        layer = conv_layer(net, self.layer, "callbacks.filter_pictures.layer")
        chosen = choose_filters(layer, self.filters, "callbacks.filter_pictures.filters")
        name = describe_layer(net, layer)
        pictures = maximize_filters(net, layer, chosen, **self.ascent)
        self.log_figure(trainer, self.tag, filters_figure(pictures[:, 0].numpy(), chosen, name))

        dataset = validation_dataset(trainer)
        if dataset is not None and len(dataset) > 0:
            image = dataset_images(dataset, [0])[0]
            maps = feature_maps(net, layer, image, chosen)
            self.log_figure(trainer, self.maps_tag, feature_maps_figure(image[0].numpy(), maps.numpy(), chosen, name))
