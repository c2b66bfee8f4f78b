"""Writing a file so that no reader, crash or full disk ever leaves half of it behind."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """An open temporary file beside ``path``, renamed over it only when the block succeeds.

    A failed block (an exception, a full disk) leaves ``path`` as it was and removes the
    temporary file; concurrent readers see the old file or the new one, never a mixture.
    """
    path = Path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(partial, mode) as handle:
            yield handle
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
