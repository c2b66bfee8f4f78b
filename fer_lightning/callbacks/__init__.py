"""Lightning callbacks that draw the report's figures into TensorBoard while a model trains.

Each is one entry of the ``callbacks`` config group; ``callbacks.<name>=null`` switches it off.
"""

from fer_lightning.callbacks.confusion_matrix import ConfusionMatrixCallback
from fer_lightning.callbacks.filter_pictures import FilterPicturesCallback
from fer_lightning.callbacks.saliency_maps import SaliencyMapsCallback

__all__ = ["ConfusionMatrixCallback", "FilterPicturesCallback", "SaliencyMapsCallback"]
