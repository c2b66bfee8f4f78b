"""Small utilities the tests share: reading TensorBoard event files, running the CLI, a demo server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def demo_server(*overrides: str) -> Iterator[str]:
    """``python -m fer_lightning.demo`` on a free port of 127.0.0.1, its address once it answers;
    stopped when the block ends."""
    import socket
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    server = subprocess.Popen([sys.executable, "-m", "fer_lightning.demo", f"port={port}", *overrides], cwd=ROOT,
                              env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stdout.read()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the demo did not start within 2 minutes"
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.terminate()
        server.wait(timeout=30)
