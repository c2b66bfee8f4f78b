"""How many threads a forward pass gets: one for a small batch, every core for a large one.

A face or a video frame's few faces is little work to share: on an idle 2-core machine two threads
answer one face up to 1.5 times sooner, but where anything else runs a one-face call on two threads
waits for the busy core and took 920 ms instead of 7.7 ms on one (docs/benchmarks.md, figures 10
and 11). A large batch splits well, so it gets every core the process may use.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from fer_lightning.config.checks import check_threads

# The largest batch that runs on one thread under threads=auto (a photo's or a video frame's faces).
SMALL_BATCH = 32


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads_for(batch_size: int, threads: int | str = "auto") -> int:
    """The thread count for a batch of ``batch_size`` faces: ``threads`` itself when it is a number;
    under ``auto``, 1 up to SMALL_BATCH faces, every usable core above."""
    check_threads(threads)
    if threads != "auto":
        return int(threads)
    return 1 if batch_size <= SMALL_BATCH else usable_cores()


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """PyTorch's intra-op thread count set to ``count`` for the block, and put back after."""
    import torch

    before = torch.get_num_threads()
    if count != before:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
