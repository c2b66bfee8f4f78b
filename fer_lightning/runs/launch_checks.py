"""Checks that the trainer and the way this process was launched fit together, before any training.

Lightning starts a multi-device run's processes in one of three ways, and each fits only some launches:

* ``script`` (``strategy=ddp``, also ``auto`` with several devices): Lightning re-runs the command line
  once per extra device. Right for a single run; inside a Hydra multirun the command line is the whole
  sweep, so every extra process would start the sweep again (Lightning #11300, Hydra #2070).
* ``spawn`` (``ddp_spawn``, ``ddp_fork``, ...): Lightning starts the processes itself from this one.
  Right alone and in any sweep; wrong under SLURM, whose tasks already are the processes.
* ``external``: the processes exist already (SLURM tasks, torchrun), one per device; Lightning joins
  them. SLURM's task count must then be devices x nodes.

Each mismatch is one line that names the fix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from omegaconf import DictConfig, OmegaConf

from fer_lightning.config.resolvers import slurm_task_count
from fer_lightning.errors import ConfigError

SPAWN_START_METHODS = ("spawn", "fork", "forkserver")
SPAWN_NAME_PARTS = ("spawn", "fork", "notebook")
GPU_ACCELERATORS = ("gpu", "cuda")


def processes_per_node(trainer: DictConfig) -> int | None:
    """How many training processes ``trainer.devices`` asks for on each node (None: decided at run time)."""
    devices = trainer.get("devices", 1)
    if OmegaConf.is_list(devices) or isinstance(devices, (list, tuple)):
        return len(devices)
    if isinstance(devices, str):
        text = devices.strip()
        if "," in text:  # "0,1": a list of device indices
            return len([part for part in text.split(",") if part.strip()])
        devices = int(text) if text.lstrip("-").isdigit() else None
    if isinstance(devices, int) and not isinstance(devices, bool) and devices > 0:
        return devices
    return None  # "auto" or -1: every device Lightning finds


def node_count(trainer: DictConfig) -> int:
    nodes = trainer.get("num_nodes", 1)
    return int(nodes) if nodes else 1


def start_style(trainer: DictConfig) -> str:
    """How Lightning would start a multi-process run of this trainer: "script" or "spawn"."""
    strategy = trainer.get("strategy", "auto")
    if OmegaConf.is_dict(strategy) or isinstance(strategy, Mapping):
        start_method = strategy.get("start_method", "popen")
        return "spawn" if start_method in SPAWN_START_METHODS else "script"
    name = str(strategy or "auto").lower()
    return "spawn" if any(part in name for part in SPAWN_NAME_PARTS) else "script"


def started_by_other_launcher(environ: Mapping[str, str]) -> bool:
    """torchrun, or a process Lightning itself started for one rank of a script-launched run."""
    return "TORCHELASTIC_RUN_ID" in environ or "LOCAL_RANK" in environ


def may_run_several_processes(trainer: DictConfig) -> bool:
    per_node = processes_per_node(trainer)
    if per_node is None:  # devices="auto": one process on a CPU, one per GPU found otherwise
        return str(trainer.get("accelerator", "auto")) != "cpu"
    return per_node * node_count(trainer) > 1


def _describe(trainer: DictConfig) -> str:
    text = f"trainer.devices={trainer.get('devices')}"
    if node_count(trainer) > 1:
        text += f" x trainer.num_nodes={node_count(trainer)}"
    return text


def check_slurm_tasks(trainer: DictConfig, tasks: int) -> None:
    per_node = processes_per_node(trainer)
    world = None if per_node is None else per_node * node_count(trainer)
    if start_style(trainer) == "spawn" and (world is None or world > 1):
        raise ConfigError(
            f"trainer.strategy={trainer.get('strategy')} starts its own processes, but under SLURM each task is "
            "one process: use trainer.strategy=ddp (hydra/launcher=slurm starts trainer.devices tasks per node)"
        )
    if world is not None and tasks != world:
        raise ConfigError(
            f"SLURM started {tasks} task(s) but {_describe(trainer)} needs {world}, one per device: keep "
            "hydra.launcher.tasks_per_node=${trainer.devices} and hydra.launcher.nodes=${trainer.num_nodes} "
            "(the defaults of hydra/launcher=slurm)"
        )


def check_launch(cfg: DictConfig, multirun: bool, environ: Mapping[str, str] | None = None) -> None:
    """Raise ConfigError when this process's launch cannot run ``cfg.trainer`` as intended."""
    environ = os.environ if environ is None else environ
    trainer = cfg.trainer
    tasks = slurm_task_count(environ)
    if tasks is not None:
        check_slurm_tasks(trainer, tasks)
        return
    local_tasks = int(environ.get("SUBMITIT_LOCAL_NTASKS", "1") or 1)
    if local_tasks > 1:
        raise ConfigError(
            f"hydra.launcher.tasks_per_node={local_tasks} runs {local_tasks} independent copies of this job "
            "on this machine: keep it 1 with hydra/launcher=local; Lightning starts the device processes"
        )
    if multirun and start_style(trainer) == "script" and may_run_several_processes(trainer):
        if not started_by_other_launcher(environ):
            raise ConfigError(
                f"trainer.strategy={trainer.get('strategy', 'auto')} with {_describe(trainer)} inside a multirun "
                "(-m) would re-run the whole sweep for every extra process: sweep multi-device jobs with "
                "hydra/launcher=slurm (SLURM starts one task per device), or use trainer.strategy=ddp_spawn"
            )
    accelerator = str(trainer.get("accelerator", "auto"))
    if (accelerator in GPU_ACCELERATORS and environ.get("SUBMITIT_EXECUTOR") == "local"
            and environ.get("CUDA_VISIBLE_DEVICES", None) == ""):
        raise ConfigError(
            "this submitit job sees no GPU (hydra.launcher.gpus_per_node=0): use hydra/launcher=local, which "
            "gives each job trainer.devices GPUs, or set hydra.launcher.gpus_per_node"
        )


# slurmctld looks at time limits about every 30 s and signals a job once less than its warning time
# plus that period is left; a job needs its first seconds to start Python and install submitit's handler.
SLURM_TIME_CHECK_S = 30
JOB_START_S = 15


def slurm_signal_too_early(launcher: DictConfig) -> str | None:
    """Why submitit's warning signal (USR2, signal_delay_s before the time limit) could reach a job while it
    is still starting, which ends it before it can checkpoint; None when it comes in time."""
    timeout_min, delay_s = launcher.get("timeout_min"), launcher.get("signal_delay_s")
    if not timeout_min or delay_s is None:
        return None
    earliest = int(timeout_min) * 60 - int(delay_s) - SLURM_TIME_CHECK_S
    if earliest >= JOB_START_S:
        return None
    return (f"hydra.launcher.signal_delay_s={delay_s} with hydra.launcher.timeout_min={timeout_min}: SLURM checks "
            f"time limits every {SLURM_TIME_CHECK_S} s and may signal each job {max(earliest, 0)} s after it starts, "
            f"before it can checkpoint, which ends it; keep signal_delay_s at most timeout_min x 60 - "
            f"{SLURM_TIME_CHECK_S + JOB_START_S}")
