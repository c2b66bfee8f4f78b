"""Checkpoints written the way every other output of a run is: to a temporary file beside the
target, renamed over it only once whole."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from fer_lightning.files import atomic_write


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, with the temporary file in the checkpoint's own folder.

    Lightning's own writer puts it in the system's temporary folder and moves it; across file
    systems that move is a copy over the old file, so a full disk truncated the last good
    ``last.ckpt``. Here a failed write leaves the old file whole and raises one line naming it.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Serialised in memory first: torch's zip writer reports a full disk as a RuntimeError of its own.
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        with atomic_write(target) as handle:
            handle.write(buffer.getbuffer())
