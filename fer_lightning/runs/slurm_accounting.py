"""Job states for submitit on a SLURM cluster that keeps no accounting.

submitit learns whether a job it waits for has ended from ``sacct``. A cluster without accounting
(no slurmdbd: small clusters, the one-node cluster of scripts/local_slurm.sh) makes sacct fail on
every poll: sacct prints its error, submitit logs a warning twice, Hydra once more, and the state
stays unknown, so a job that ends without a result (cancelled, killed at its time limit) is waited
for forever. Here sacct's refusal is recognised once, said in one line, and ``squeue`` (which needs no
accounting) gives the states instead.
"""

from __future__ import annotations

import logging
import subprocess
import time
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from fer_lightning.runs.launch_checks import slurm_signal_too_early

log = logging.getLogger(__name__)

ACCOUNTING_OFF = "accounting storage is disabled"  # sacct's words when there is no accounting
SQUEUE_FORMAT = "%i|%T|%N"  # the fields submitit reads from sacct: JobID, State, NodeList
SLURM_LAUNCHERS = ("SlurmLauncher",)
# States of a job that has not ended and that submitit would take for an end (it waits only on
# PENDING, RUNNING, REQUEUED, COMPLETING and a few more): a suspended job (scontrol suspend, or a
# cluster that preempts by suspending) was reported as ended without a result while it went on.
NOT_ENDED = frozenset({"SUSPENDED", "STOPPED", "CONFIGURING", "RESIZING", "SIGNALING", "STAGE_OUT",
                       "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"})


def squeue_fallback_watcher(delay_s: int):
    """A submitit watcher that asks sacct while accounting answers and squeue once it does not, and
    waits on a suspended job as on a running one."""
    from submitit.slurm.slurm import SlurmInfoWatcher

    class SqueueWithoutAccounting(SlurmInfoWatcher):
        accounting = True

        def is_done(self, job_id: str, mode: str = "standard") -> bool:
            if self.get_state(job_id, mode=mode).upper() in NOT_ENDED:
                return False
            return super().is_done(job_id, mode="cache")

        def _make_command(self) -> list[str] | None:
            command = super()._make_command()
            if command is None or self.accounting:
                return command
            job_ids = [command[i + 1] for i, part in enumerate(command) if part == "-j"]
            return ["squeue", "--noheader", "--states=all", f"--format={SQUEUE_FORMAT}", f"--jobs={','.join(job_ids)}"]

        def update(self) -> None:
            command = self._make_command()
            if command is None:
                return
            self._num_calls += 1
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0 and self.accounting and ACCOUNTING_OFF in result.stderr:
                type(self).accounting = False
                log.info("this SLURM cluster keeps no accounting (sacct): job states are read from squeue")
                self.update()
                return
            if result.returncode == 0:
                text = result.stdout if self.accounting else "JobID|State|NodeList\n" + result.stdout
                self._info_dict.update(self.read_info(text))
            else:  # a job squeue has forgotten, a slow controller: the result file still says when it ends
                log.debug("%s: %s", " ".join(command), result.stderr.strip())
            self._last_status_check = time.time()
            for job_id in self._registered - self._finished:
                if self.is_done(job_id, mode="cache"):
                    self._finished.add(job_id)

    return SqueueWithoutAccounting(delay_s=delay_s)


def use_squeue_without_accounting() -> None:
    """Give every submitit SLURM job of this process the watcher above (idempotent)."""
    from submitit.slurm.slurm import SlurmJob

    if type(SlurmJob.watcher).__name__ != "SqueueWithoutAccounting":
        SlurmJob.watcher = squeue_fallback_watcher(SlurmJob.watcher._delay_s)


class SlurmJobStates(Callback):
    """Hydra callback (conf/hydra/default.yaml): before a sweep's jobs go to SLURM, in the launching
    process, warn of a time limit too short for its signal and install the watcher. Other launchers are
    left alone, and submitit is imported only here."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        target = str(OmegaConf.select(config, "hydra.launcher._target_", default="") or "")
        if target.endswith(SLURM_LAUNCHERS):
            too_early = slurm_signal_too_early(config.hydra.launcher)
            if too_early:  # Hydra turns a callback's exception into a warning: say it plainly instead
                log.warning(too_early)
            use_squeue_without_accounting()
