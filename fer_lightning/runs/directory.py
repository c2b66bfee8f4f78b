"""One run's directory: its status, lock, resume checkpoint and metrics.json.

A run lives at a path made from its overrides, so the same command finds it again:
an unfinished run resumes from ``checkpoints/last.ckpt``, a finished one is skipped,
and ``retrain=true`` archives the old results instead of overwriting them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time
import zipfile
from pathlib import Path
from typing import Any

from fer_lightning.errors import FerError
from fer_lightning.files import atomic_write, read_json_object

log = logging.getLogger(__name__)


class RunInUse(FerError):
    """Another live process holds this run directory; the refused command leaves the run alone."""

METRICS_FILE = "metrics.json"
LOCK_FILE = "run.lock"  # who holds the run: {"pid", "host", "since"}
FLOCK_FILE = ".run.flock"  # the operating system's lock itself
ARCHIVED = ("checkpoints", "tensorboard", "csv", METRICS_FILE)


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    with atomic_write(path, "w") as handle:
        handle.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunDirectory:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.metrics_path = self.path / METRICS_FILE
        self.checkpoint_dir = self.path / "checkpoints"
        self.lock_path = self.path / LOCK_FILE
        self._lock = None  # the held FileLock while this process trains here

    # ---------------------------------------------------------------- status
    def read_metrics(self) -> dict[str, Any]:
        if not self.metrics_path.is_file():
            return {}
        return read_json_object(self.metrics_path) or {}  # damaged ([1], not UTF-8, huge): as if new

    @property
    def status(self) -> str:
        """new, running, completed or failed."""
        return self.read_metrics().get("status", "new")

    def resume_checkpoint(self) -> Path | None:
        """checkpoints/last.ckpt of an unfinished run, if it is intact.

        A process killed while writing it leaves a truncated file: that one is kept aside as
        last.ckpt.broken-<time> (never deleted) and the run starts over.
        """
        last = self.checkpoint_dir / "last.ckpt"
        if not last.is_file() or self.status == "completed":
            return None
        try:
            with zipfile.ZipFile(last) as archive:
                intact = archive.testzip() is None
        except (zipfile.BadZipFile, OSError):
            intact = False
        if intact:
            return last
        aside = last.with_name(f"last.ckpt.broken-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(last, aside)
        log.warning("%s is truncated (kept as %s); training starts over", last, aside.name)
        return None

    def write_metrics(self, **values: Any) -> dict[str, Any]:
        """Merge ``values`` into metrics.json (atomically) and return the result."""
        data = self.read_metrics()
        data.update(values)
        write_json_atomic(self.metrics_path, data)
        return data

    # ------------------------------------------------------------ protection
    def check_writable(self) -> None:
        probe = self.path / ".write-probe"
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe.write_text("ok")
            probe.unlink()
        except OSError as error:
            raise FerError(f"output directory {self.path} is not writable: {error.strerror}") from None

    def acquire_lock(self) -> None:
        """Refuse to share the directory with a live run of the same command.

        The operating system's file lock (``filelock``) is atomic and dies with its process, so two
        commands started at the same instant never both hold it and a killed run leaves no stale
        lock. Who holds it is written to run.lock for the refusal message and the leaderboard.
        """
        from filelock import FileLock, Timeout

        lock = FileLock(self.path / FLOCK_FILE)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            other = read_json_object(self.lock_path) or {}
            raise RunInUse(
                f"{self.path} is in use by process {other.get('pid', '(starting)')}: the same run is already "
                "going; wait for it, or give this one another name=..."
            ) from None
        self._lock = lock
        write_json_atomic(self.lock_path, {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()})

    def release_lock(self) -> None:
        if self._lock is not None:
            self.lock_path.unlink(missing_ok=True)
            self._lock.release()
            self._lock = None

    def archive_previous(self) -> Path | None:
        """Move a previous attempt's results into archive/<time>/ instead of deleting them."""
        present = [self.path / name for name in ARCHIVED if (self.path / name).exists()]
        if not present:
            return None
        target = self.path / "archive" / time.strftime("%Y-%m-%d_%H-%M-%S")
        target.mkdir(parents=True, exist_ok=True)
        for item in present:
            shutil.move(str(item), str(target / item.name))
        return target
