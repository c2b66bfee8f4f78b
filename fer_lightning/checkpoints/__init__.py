"""Model files, one home: what a model name or path resolves to (``resolve``), the models shipped with
the package (shipped.py), a model checkpoint and the network it holds (model_file.py), the ensemble
file (ensemble_file.py), and either as one predictor (predictor.py). Every file is read weights-only:
a file never names code."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def resolve(source: Any) -> Path:
    """The file a model name or path reads: ``pretrained[:name]`` is that shipped model's verified
    file, a run directory its ``checkpoints/best.ckpt``, anything else the path itself."""
    from fer_lightning.checkpoints.shipped import is_pretrained, pretrained_file

    if is_pretrained(source):
        return pretrained_file(source)
    path = Path(source)
    best = path / "checkpoints" / "best.ckpt"
    return best if path.is_dir() and best.is_file() else path
