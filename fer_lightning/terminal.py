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
