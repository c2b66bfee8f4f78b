"""OmegaConf resolvers the configs use; registered before Hydra composes anything."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

from omegaconf import OmegaConf

from fer_lightning.paths import PACKAGE_DIR

# Overrides that do not change what is trained, so they do not change where a run lives.
NEUTRAL_KEYS = ("name", "retrain", "print_config", "paths.log_dir")
MAX_KEY_LENGTH = 80


def project_root() -> str:
    """The checkout that holds the package (editable install), else the working directory."""
    checkout = PACKAGE_DIR.parent
    if (checkout / "pyproject.toml").is_file():
        return str(checkout)
    return str(Path.cwd())


def run_key(overrides: str | Iterable[str] | None) -> str:
    """A directory name made from a run's overrides: readable, filesystem-safe, unique, bounded."""
    if overrides is None:
        items: list[str] = []
    elif isinstance(overrides, str):
        items = [overrides] if overrides else []
    else:
        items = sorted(
            str(o) for o in overrides
            if not str(o).lstrip("+~").startswith("hydra") and str(o).lstrip("+~").split("=")[0] not in NEUTRAL_KEYS
        )
    text = ",".join(items)
    if not text:
        return "default"
    safe = re.sub(r"[^A-Za-z0-9._=,+\-]", "-", text)
    if len(safe) > MAX_KEY_LENGTH:
        digest = hashlib.sha1(text.encode()).hexdigest()[:8]
        safe = f"{safe[: MAX_KEY_LENGTH - 9]}-{digest}"
    return safe


def cpu_precision() -> str:
    """bf16 autocast where the CPU computes bf16 natively (AVX-512 bf16 or AMX), else fp32.

    On AVX2-only CPUs bf16 is emulated and trains this network ~20x slower than fp32.
    """
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "32-true"
    return "bf16-mixed" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "32-true"


def register_resolvers() -> None:
    for name, function in (
        ("fer.root", project_root),
        ("fer.run_key", run_key),
        ("fer.cpu_precision", cpu_precision),
    ):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function)
