"""fer-lightning: facial expression recognition on FER2013 with PyTorch Lightning and Hydra.

    from fer_lightning import Recognizer
    faces = Recognizer.pretrained().predict("photo.jpg")

The API is imported on first use, so the command-line entry points start without torch.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["FaceExplanation", "FaceExpression", "Recognizer", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("Recognizer", "FaceExpression", "FaceExplanation"):
        from fer_lightning.inference import recognizer

        return getattr(recognizer, name)
    raise AttributeError(f"module 'fer_lightning' has no attribute {name!r}")
