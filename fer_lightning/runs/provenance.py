"""Where a run came from, written into its directory as provenance.json: its tags, the command line,
the code (git commit and whether the tree had uncommitted changes), the versions of the libraries
that decide its numbers, and the hardware with the precision chosen for it."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

PROVENANCE_FILE = "provenance.json"
# The distributions whose versions change what a run computes or how fast.
PACKAGES = ("fer-lightning", "torch", "pytorch-lightning", "torchmetrics", "hydra-core", "omegaconf", "numpy",
            "albumentations", "opencv-python-headless", "captum")


def cpu_name() -> str:
    """The CPU's model name with its family and model numbers: a VM often names only the brand
    ("AMD EPYC"), and the numbers tell its generation (family 25 model 17 is Zen 4)."""
    try:
        first = Path("/proc/cpuinfo").read_text().split("\n\n")[0]
    except OSError:
        return platform.processor() or platform.machine()
    fields = {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in first.splitlines())}
    name = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        return f"{name} (family {fields['cpu family']} model {fields['model']})"
    return name


def git_state(directory: Path) -> dict[str, Any] | str:
    """The commit the code was at and whether the tree differed from it; a string when there is no git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return "not a git checkout"
    return {"commit": commit, "dirty": dirty}


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def hardware(precision: str) -> dict[str, Any]:
    import torch

    return {
        "cpu": cpu_name(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "precision": precision,
    }


def command_line() -> str:
    """The command as typed: ``fer train ...`` or ``python -m fer_lightning.train ...``."""
    program = Path(sys.argv[0])
    if program.parent.name == "fer_lightning" and program.suffix == ".py":
        program = Path(f"python -m fer_lightning.{program.stem}")
    return " ".join([str(program) if " " in program.name or "-m" in str(program) else program.name, *sys.argv[1:]])


def provenance(tags: list[str], precision: str) -> dict[str, Any]:
    from fer_lightning.config.paths import PACKAGE_DIR

    return {
        "tags": tags,
        "command": command_line(),
        "git": git_state(PACKAGE_DIR),
        "versions": package_versions(),
        "hardware": hardware(precision),
    }
