"""Small utilities the tests share: reading TensorBoard event files, running the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tensorboard_tags(log_dir: Path) -> dict[str, set[str]]:
    """{"scalars": {...}, "images": {...}} over every event file below log_dir."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags: dict[str, set[str]] = {"scalars": set(), "images": set()}
    for events in Path(log_dir).rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events), size_guidance={"images": 0, "scalars": 0})
        accumulator.Reload()
        found = accumulator.Tags()
        tags["scalars"] |= set(found.get("scalars", []))
        tags["images"] |= set(found.get("images", []))
    return tags


def run_cli(module: str, *args: str, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m module args...` from the project root, as a user would."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "NO_ALBUMENTATIONS_UPDATE": "1", **(env or {})}
    environment.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=timeout,
    )


def mounted_tmpfs(folder: Path, options: str):
    """Yield ``folder`` with a tmpfs of its own mounted there (``options``: ``size=3m``, ``size=1m,ro``): a
    full or read-only file system that even root meets. Skips the test without root or mount rights."""
    import pytest

    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)
