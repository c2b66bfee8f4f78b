"""Inference through PyTorch: a loaded checkpoint or ensemble (checkpoints/predictor.py) scoring face
crops with any test-time augmentation, on a thread count chosen per batch (inference/threads.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from fer_lightning.checkpoints.predictor import Predictor


class TorchClassifier:
    backend = "torch"

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self.class_names = predictor.class_names
        self.temperature = predictor.temperature  # applied by the recognizer, as for every backend

    def probabilities(self, faces: np.ndarray, batch_size: int = 256, tta: str = "none",
                      threads: int | str = "auto") -> np.ndarray:
        from fer_lightning.inference.scoring import predict_probabilities
        from fer_lightning.inference.threads import threads_for, torch_threads

        with torch_threads(threads_for(min(len(faces), batch_size), threads)):
            return predict_probabilities(self.predictor.module, faces, batch_size, tta)
