"""OmegaConf resolvers the configs use; registered before Hydra composes anything."""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from omegaconf import OmegaConf

from fer_lightning.config.paths import outputs_dir, project_root

# Overrides that do not change what is trained, so they do not change where a run (or a sweep)
# lives; conf/hydra/default.yaml reads this list through ${fer.neutral_keys:}.
NEUTRAL_KEYS = ("name", "tags", "retrain", "print_config", "paths.log_dir", "data.num_workers", "data.cache_dir")
MAX_KEY_LENGTH = 80


def run_key(overrides: str | Iterable[str] | None) -> str:
    """A directory name made from a run's overrides: readable, filesystem-safe, unique, bounded."""
    if overrides is None:
        overrides = []
    elif isinstance(overrides, str):
        overrides = overrides.split("\n")
    items = sorted(
        str(o) for o in overrides
        if str(o) and not str(o).lstrip("+~").startswith("hydra")
        and str(o).lstrip("+~").split("=")[0] not in NEUTRAL_KEYS
    )
    text = ",".join(items)
    if not text:
        return "default"
    safe = [re.sub(r"[^A-Za-z0-9._=,+\-]", "-", item) for item in items]
    if len(",".join(safe)) <= MAX_KEY_LENGTH:
        return ",".join(safe)
    # Too long: whole overrides while they fit, then a digest of all of them (never half a value).
    digest = hashlib.sha1(text.encode()).hexdigest()[:8]
    kept: list[str] = []
    while safe and len(",".join([*kept, safe[0]])) <= MAX_KEY_LENGTH - 9:
        kept.append(safe.pop(0))
    if not kept:
        # Even the first override is too long (a long path): its key and the end of its value, so the
        # name still says what the run changed.
        key, _, value = safe[0].partition("=")
        room = max(MAX_KEY_LENGTH - 9 - len(key) - 1, 0)
        tail = value[len(value) - room:] if room else ""
        if tail != value and "-" in tail:  # start at a folder boundary ('/' became '-'), not in a word
            tail = tail.split("-", 1)[1]
        kept = [f"{key}={tail}"[: MAX_KEY_LENGTH - 9]]
    return f"{','.join(kept)}-{digest}"


def command_line_overrides() -> str:
    """The key=value overrides typed on the command line, one per line.

    Registered cached: Hydra copies resolver caches from the launching config into every job's
    config (as it does for ${now:}), so jobs started elsewhere (submitit) see the same value.
    """
    return "\n".join(
        a for a in sys.argv[1:]
        if "=" in a and not a.startswith("-") and not a.lstrip("+~").startswith("hydra")
    )


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def swept_keys(typed: Iterable[str]) -> set[str]:
    """The keys given a sweep on the command line (``a=1,2``, ``range(...)``, ``choice(...)``, ``glob(...)``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides([o for o in typed if o])
    except Exception:  # what Hydra itself refuses never reaches a job
        return set()
    return {override.key_or_group for override in parsed if override.is_sweep_override()}


def job_key(job_overrides: Iterable[str], command_line: str = "", sweep_dir: str | None = None) -> str:
    """A sweep job's directory name: the overrides that differ between the sweep's jobs.

    Those are the keys swept on the command line (``model.dropout=0.3,0.5`` gives ``model.dropout=0.3``)
    and any a sweeper added (optuna's parameters); what every job shares is in the sweep directory's
    name and its multirun.yaml. A sweep of one job has nothing that differs: ``default``. When nothing
    is known about the command line, the job's full override list is used.

    Jobs of sweeps started before this naming had every override not typed literally in their name; such
    a directory, when it exists in ``sweep_dir``, is still the job's, so it resumes or is skipped.
    """
    overrides = [str(o) for o in job_overrides]
    typed = [line for line in command_line.split("\n") if line] if command_line else []
    earlier = run_key([o for o in overrides if o not in set(typed)] or overrides)
    if not typed:
        return earlier
    swept, typed_keys = swept_keys(typed), {override_key(o) for o in typed}
    name = run_key([o for o in overrides if override_key(o) in swept or override_key(o) not in typed_keys])
    if sweep_dir and name != earlier and (Path(sweep_dir) / earlier).is_dir() and not (Path(sweep_dir) / name).exists():
        return earlier
    return name


def cpu_precision() -> str:
    """bf16 autocast where the CPU computes bf16 natively (AVX-512 bf16 or AMX), else fp32.

    On AVX2-only CPUs bf16 is emulated and trains this network ~20x slower than fp32.
    """
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "32-true"
    return "bf16-mixed" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "32-true"


# Whole epochs of the report's CNN on FER2013 that fit in 60 minutes on 2 cores, measured with
# validation: 5.3-5.9 min each in fp32 on AVX2 (Zen 3), 2.0-2.2 min in bf16 on native-bf16 CPUs (Zen 4).
CPU_HOUR_EPOCHS = {"32-true": 11, "bf16-mixed": 22}


def cpu_hour_epochs(bf16_epochs: int | None = None, fp32_epochs: int | None = None) -> int:
    """How many epochs a CPU-hour experiment schedules: what fits the hour at this CPU's precision
    (``${fer.cpu_hour_epochs:65,30}`` for a network of its own; the report's network by default)."""
    given = {"bf16-mixed": bf16_epochs, "32-true": fp32_epochs}[cpu_precision()]
    return int(given) if given is not None else CPU_HOUR_EPOCHS[cpu_precision()]


def local_artifacts(tracking_uri: str, folder: str) -> str | None:
    """Where a local MLflow store (sqlite: or file:) keeps artifacts; None for a server, which decides."""
    return folder if str(tracking_uri).startswith(("sqlite:", "file:")) or "://" not in str(tracking_uri) else None


SLURM_INTERACTIVE_JOB_NAMES = ("bash", "interactive")  # Lightning ignores SLURM for these job names


def slurm_task_count(environ: Mapping[str, str] | None = None) -> int | None:
    """SLURM's task count when Lightning will use its SLURMEnvironment (as its detect() decides), else None."""
    environ = os.environ if environ is None else environ
    if "SLURM_NTASKS" not in environ or environ.get("SLURM_JOB_NAME") in SLURM_INTERACTIVE_JOB_NAMES:
        return None
    return int(environ["SLURM_NTASKS"])


def cpu_ddp_strategy() -> str:
    """trainer=ddp_cpu's strategy: Lightning starts the processes itself (ddp_spawn), except inside a
    SLURM job of several tasks, where the tasks are the processes and Lightning joins them (ddp)."""
    return "ddp" if (slurm_task_count() or 1) > 1 else "ddp_spawn"


def gpus_per_node(accelerator: str, devices: object) -> object:
    """The GPUs a SLURM job asks for: none for a CPU trainer (a CPU partition has no GPU to give, and
    sbatch refuses a GPU request there), else one per device."""
    return None if str(accelerator) == "cpu" else devices


def register_resolvers() -> None:
    for name, function in (
        ("fer.root", project_root),
        ("fer.outputs", outputs_dir),
        ("fer.run_key", run_key),
        ("fer.cpu_precision", cpu_precision),
        ("fer.cpu_hour_epochs", cpu_hour_epochs),
        ("fer.job_key", job_key),
        ("fer.neutral_keys", lambda: list(NEUTRAL_KEYS)),
        ("fer.basename", lambda path: Path(str(path)).name),
        ("fer.local_artifacts", local_artifacts),
        ("fer.cpu_ddp_strategy", cpu_ddp_strategy),
        ("fer.gpus_per_node", gpus_per_node),
    ):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function)
    if not OmegaConf.has_resolver("fer.command_line"):
        OmegaConf.register_new_resolver("fer.command_line", command_line_overrides, use_cache=True)
