"""Rich output that keeps its lines whole when piped into a file or another program.

Rich assumes 80 columns when stdout is not a terminal and wraps or cuts anything wider; a log or a
`| grep` should see the same lines a terminal would.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

PIPED_WIDTH = 1000


def console(width: int | None = None) -> Console:
    from rich.console import Console

    if width is None and not sys.stdout.isatty():
        width = PIPED_WIDTH
    return Console(width=width)


class LibraryChatter:
    """A logging filter for the screen: drops Lightning's set-up notices that say nothing about this
    run (hardware absent, tips, seeds and precision the run's header already gives). Warnings and
    everything else pass; the log file keeps them all."""

    SOURCES = ("pytorch_lightning", "lightning_fabric", "lightning")
    NOTICES = ("💡 Tip", "GPU available", "TPU available", "HPU available", "Seed set to",
               "Using bfloat16 Automatic Mixed Precision", "Using 16bit Automatic Mixed Precision",
               "Loading `train_dataloader` to estimate", "Restoring states from the checkpoint path",
               "Loaded model weights from the checkpoint")

    def filter(self, record) -> bool:
        if record.levelno >= 30 or not record.name.startswith(self.SOURCES):
            return True
        return not str(record.msg).startswith(self.NOTICES)
