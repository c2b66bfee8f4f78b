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

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
LOCK_FILE = "run.lock"
ARCHIVED = ("checkpoints", "tensorboard", "csv", METRICS_FILE)


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write via a temporary file and rename, so a crash never leaves half a JSON file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


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

    # ---------------------------------------------------------------- status
    def read_metrics(self) -> dict[str, Any]:
        if not self.metrics_path.is_file():
            return {}
        try:
            return json.loads(self.metrics_path.read_text())
        except (OSError, json.JSONDecodeError):
            return {}

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
        """Refuse to share the directory with a live run of the same command."""
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        for _ in range(2):
            try:
                fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                try:
                    other = json.loads(self.lock_path.read_text())
                except (OSError, json.JSONDecodeError):
                    other = {}
                if other.get("host") == me["host"] and process_alive(int(other.get("pid", -1))):
                    raise FerError(
                        f"{self.path} is in use by process {other['pid']}: the same run is already "
                        "going; wait for it, or give this one another name=..."
                    ) from None
                self.lock_path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as handle:
                json.dump(me, handle)
            return
        raise FerError(f"could not lock {self.lock_path}")

    def release_lock(self) -> None:
        self.lock_path.unlink(missing_ok=True)

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
