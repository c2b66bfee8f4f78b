"""Lightning callbacks: the report's figures drawn into TensorBoard while a model trains, train and
validation curves paired in one chart each, and a line per epoch in the run's log.

Each is one entry of the ``callbacks`` config group; ``callbacks.<name>=null`` switches it off.
"""

from fer_lightning.callbacks.confusion_matrix import ConfusionMatrixCallback
from fer_lightning.callbacks.epoch_log import EpochLogCallback
from fer_lightning.callbacks.filter_pictures import FilterPicturesCallback
from fer_lightning.callbacks.saliency_maps import SaliencyMapsCallback
from fer_lightning.callbacks.train_val_charts import TrainValChartsCallback

__all__ = [
    "ConfusionMatrixCallback",
    "EpochLogCallback",
    "FilterPicturesCallback",
    "SaliencyMapsCallback",
    "TrainValChartsCallback",
]
