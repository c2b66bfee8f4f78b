"""hydra/launcher=slurm against a real SLURM: a one-node cluster (scripts/local_slurm.sh) started for this
test session and stopped at its end. Sweeps as job arrays, a requeued (preempted) job, a job that reaches
its time limit, DDP across two SLURM tasks and a failing job.

Needs Debian's slurm-wlm and munge; without them the tests skip, unless FER_REQUIRE_SLURM=1 (CI, which
installs them) makes that a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.helpers import ROOT, run_cli

pytestmark = pytest.mark.slow

SCRIPT = ROOT / "scripts" / "local_slurm.sh"
PROGRAMS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo")
# Debian installs the daemons in /usr/sbin, which a user's PATH may lack.
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])

# A job of one CPU and little memory: the node has the machine's cores and memory, shared by all jobs.
SLURM_JOB = ["hydra/launcher=slurm", "hydra.launcher.partition=debug", "hydra.launcher.cpus_per_task=1",
             "hydra.launcher.mem_gb=1"]
# Tiny synthetic-face runs: a job is mostly Python start-up.
TINY = ["data.synthetic.train=256", "data.synthetic.val=64", "data.synthetic.test=0", "data.batch_size=64",
        "model/width=narrow", "augmentation=none", "callbacks=none", "logger=none", "print_config=false"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    """The environment of a running one-node cluster of this session's own: its folder and ports (so it
    meets no other cluster on the machine, `make slurm-up`'s included), SLURM_CONF pointing at it."""
    missing = [name for name in PROGRAMS if shutil.which(name, path=SEARCH_PATH) is None]
    if missing:
        reason = f"needs Debian's slurm-wlm and munge ({', '.join(missing)} not found)"
        if os.environ.get("FER_REQUIRE_SLURM") == "1":  # CI installs them: missing is a failure
            pytest.fail(reason)
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "PATH": SEARCH_PATH, "FER_SLURM_DIR": str(folder),
           "FER_SLURM_CTLD_PORT": str(free_port()), "FER_SLURM_SLURMD_PORT": str(free_port()),
           "SLURM_CONF": str(folder / "slurm.conf")}
    try:
        up = subprocess.run([str(SCRIPT), "up"], env=env, capture_output=True, text=True, timeout=180)
        assert up.returncode == 0, f"the local cluster did not start: {up.stdout}{up.stderr}"
        again = subprocess.run([str(SCRIPT), "up"], env=env, capture_output=True, text=True, timeout=60)
        assert again.returncode == 0 and "already up" in again.stdout, "up is idempotent"
        yield env
    finally:
        subprocess.run([str(SCRIPT), "down"], env=env, capture_output=True, text=True, timeout=120)


def train(slurm: dict, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return run_cli("fer_lightning.train", *args, env=slurm, timeout=timeout)


def queue(slurm: dict) -> list[str]:
    out = subprocess.run(["squeue", "--noheader", "--format=%i %T"], env=slurm, capture_output=True, text=True,
                         check=True).stdout
    return out.split("\n")[:-1]


def assert_queue_empties(slurm: dict) -> None:
    """No job left behind: a job's processes end a moment after it wrote its result."""
    deadline = time.monotonic() + 60
    while queue(slurm) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert queue(slurm) == [], "jobs left in the queue"


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def job_logs(sweep_dir: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in sorted(sweep_dir.glob(".submitit/*/*_log.*")))


def slurm_jobs(sweep_dir: Path) -> list[str]:
    """The SLURM ids of a sweep's jobs (<array job>_<index> in an array), from submitit's folders."""
    return sorted(p.name for p in sweep_dir.glob(".submitit/*") if p.is_dir() and p.name.replace("_", "").isdigit())


def sweep_of(root: Path) -> Path:
    (multirun,) = root.glob("multiruns/*/*/multirun.yaml")
    return multirun.parent


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def assert_same_weights(run_dir: Path, reference_dir: Path) -> None:
    ours, reference = weights(run_dir), weights(reference_dir)
    assert ours.keys() == reference.keys()
    for name in ours:
        assert torch.equal(ours[name], reference[name]), f"{name} differs from the uninterrupted run's"


def assert_quiet(output: str) -> None:
    assert "Bypassing sacct error" not in output and "sacct" not in output.replace(
        "keeps no accounting (sacct)", ""), output[-3000:]
    assert output.count("keeps no accounting") <= 1
    assert "srun` command is available" not in output
    assert "Traceback" not in output, output[-3000:]


def test_a_sweep_is_one_job_array_named_by_what_varies(slurm, tmp_path):
    result = train(slurm, "-m", *SLURM_JOB, "model.dropout=0.3,0.5", *TINY, "trainer.max_epochs=1",
                   f"paths.log_dir={tmp_path}")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "2 completed, 0 failed, 0 skipped" in result.stdout
    assert_quiet(output)
    sweep_dir = sweep_of(tmp_path)
    (script,) = sweep_dir.glob(".submitit/*/*_submission.sh")  # one sbatch script: the array
    options = {line.split()[1] for line in script.read_text().splitlines() if line.startswith("#SBATCH")}
    assert "--array=0-1%2" in options and "--partition=debug" in options
    assert not any(option.startswith(("--gpus", "--gres")) for option in options), "trainer=cpu asks for no GPU"
    tasks = [job for job in slurm_jobs(sweep_dir) if "_" in job]  # <array job>_<index>, beside <array job>/
    assert len(tasks) == 2 and len({task.split("_")[0] for task in tasks}) == 1, tasks
    # Each job is named after what differs between them; what they share names the sweep.
    runs = sorted(p.parent for p in sweep_dir.glob("*/metrics.json"))
    assert [run.name for run in runs] == ["model.dropout=0.3", "model.dropout=0.5"]
    assert all(read_json(run / "metrics.json")["status"] == "completed" for run in runs)
    board = run_cli("fer_lightning.leaderboard", str(sweep_dir), env=slurm)
    assert board.returncode == 0, board.stderr[-2000:]
    assert "model.dropout=0.3" in board.stdout and "model.dropout=0.5" in board.stdout
    assert_queue_empties(slurm)


def test_a_failing_job_is_listed_failed_and_the_others_finish(slurm, tmp_path):
    result = train(slurm, "-m", *SLURM_JOB, "model.dropout=0.3,1.5", *TINY, "trainer.max_epochs=1",
                   f"paths.log_dir={tmp_path}")
    assert result.returncode == 1, (result.stdout + result.stderr)[-3000:]
    assert "1 completed, 1 failed, 0 skipped; first failure: model.dropout=1.5" in result.stdout
    sweep_dir = sweep_of(tmp_path)
    assert read_json(sweep_dir / "model.dropout=0.3" / "metrics.json")["status"] == "completed"
    assert read_json(sweep_dir / "model.dropout=1.5" / "metrics.json")["status"] == "failed"
    assert_queue_empties(slurm)


def test_sbatch_refusing_a_job_is_one_line(slurm, tmp_path):
    result = train(slurm, "-m", *SLURM_JOB, "hydra.launcher.cpus_per_task=64", *TINY, f"paths.log_dir={tmp_path}")
    assert result.returncode == 2
    # sbatch's own reason, then what to change: no traceback.
    assert result.stderr.strip().splitlines() == [
        "sbatch: error: Batch job submission failed: More processors requested than permitted",
        "error: sbatch refused the sweep's jobs (its reason is the line above): hydra.launcher.<key>=... sets "
        "their sbatch options (docs/cluster.md lists them)"], result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr


def wait_for(condition, timeout: float, what: str, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        assert process is None or process.poll() is None, f"the sweep ended before {what}"
        time.sleep(0.2)
    raise AssertionError(f"no {what} after {timeout:.0f} s")


def reference_run(tmp_path: Path, *args: str) -> Path:
    """The same run without SLURM, uninterrupted."""
    return finish_reference(start_reference(tmp_path, *args), tmp_path)


def start_reference(tmp_path: Path, *args: str) -> subprocess.Popen:
    """The reference run in the background, beside the SLURM job (one thread each on the two cores)."""
    command = [sys.executable, "-m", "fer_lightning.train", *args, f"paths.log_dir={tmp_path / 'reference'}"]
    with open(tmp_path / "reference.log", "w") as log:  # a file, not a pipe nobody reads while it runs
        return subprocess.Popen(command, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1",
                                                        "NO_ALBUMENTATIONS_UPDATE": "1"},
                                stdout=log, stderr=subprocess.STDOUT)


def finish_reference(process: subprocess.Popen, tmp_path: Path) -> Path:
    process.wait(timeout=900)
    assert process.returncode == 0, (tmp_path / "reference.log").read_text()[-3000:]
    (metrics,) = (tmp_path / "reference").glob("runs/*/*/metrics.json")
    return metrics.parent


def test_a_requeued_job_resumes_from_its_last_checkpoint(slurm, tmp_path):
    run = [*TINY, "trainer.max_epochs=4"]
    process = subprocess.Popen(
        [sys.executable, "-m", "fer_lightning.train", "-m", *SLURM_JOB, *run, f"paths.log_dir={tmp_path / 'slurm'}"],
        cwd=ROOT, env={**slurm, "OMP_NUM_THREADS": "1", "NO_ALBUMENTATIONS_UPDATE": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        last = wait_for(lambda: next((tmp_path / "slurm").glob("multiruns/*/*/*/checkpoints/last.ckpt"), None),
                        300, "first checkpoint", process)
        (job,) = slurm_jobs(last.parents[2])
        requeue = subprocess.run(["scontrol", "requeue", job], env=slurm, capture_output=True, text=True)
        assert requeue.returncode == 0, requeue.stderr
        requeued_at = torch.load(last, weights_only=True)["epoch"]
        output, _ = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output[-3000:]
    assert "1 completed, 0 failed" in output
    run_dir = last.parents[1]
    logs = job_logs(run_dir.parent)
    assert logs.count("resuming from") == 1 and requeued_at < 3, "requeued before the end, resumed once"
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["status"] == "completed" and metrics["epochs_completed"] == 4
    reference = reference_run(tmp_path, *run)
    assert metrics["best_val_acc"] == read_json(reference / "metrics.json")["best_val_acc"]
    assert_same_weights(run_dir, reference)
    assert_queue_empties(slurm)


def test_a_suspended_job_is_not_taken_for_an_ended_one(slurm, tmp_path, monkeypatch):
    """submitit waits only on the states it knows; a suspended job (scontrol suspend, or a cluster that
    preempts by suspending) was read as ended, and its sweep failed while it still ran."""
    from fer_lightning.runs.slurm_accounting import squeue_fallback_watcher

    for key, value in slurm.items():  # the watcher asks the test's cluster
        monkeypatch.setenv(key, value)
    submitted = subprocess.run(["sbatch", "--parsable", "--partition=debug", "--cpus-per-task=1", "--mem=100M",
                                f"--output={tmp_path / 'sleep.out'}", "--wrap", "sleep 300"],
                               env=slurm, capture_output=True, text=True)
    assert submitted.returncode == 0, submitted.stderr
    job = submitted.stdout.strip().split(";")[0]
    try:
        wait_for(lambda: f"{job} RUNNING" in queue(slurm), 60, "running job")
        subprocess.run(["scontrol", "suspend", job], env=slurm, check=True, capture_output=True)
        wait_for(lambda: f"{job} SUSPENDED" in queue(slurm), 30, "suspended job")
        watcher = squeue_fallback_watcher(delay_s=1)
        watcher.register_job(job)
        watcher.update()
        assert watcher.get_state(job, mode="cache") == "SUSPENDED"
        assert not watcher.is_done(job, mode="cache")
        subprocess.run(["scontrol", "resume", job], env=slurm, check=True, capture_output=True)
        subprocess.run(["scancel", job], env=slurm, check=True, capture_output=True)
        wait_for(lambda: not any(line.startswith(f"{job} ") for line in queue(slurm)), 30, "cancelled job")
        watcher.update()
        assert watcher.get_state(job, mode="cache") == "CANCELLED" and watcher.is_done(job, mode="cache")
    finally:
        subprocess.run(["scancel", job], env=slurm, capture_output=True)
    assert_queue_empties(slurm)


def test_a_job_past_its_time_limit_is_resubmitted_and_completes(slurm, tmp_path):
    # One minute of job time. SLURM checks time limits every 30 s and sends submitit's USR2 once less than
    # signal_delay_s + 30 s are left: 20-50 s into each start here, while training takes over a minute
    # even on an idle machine. The job checkpoints, requeues itself and resumes from last.ckpt.
    run = [*TINY, "data.synthetic.train=512", "trainer.max_epochs=64"]
    reference = start_reference(tmp_path, *run)
    result = train(slurm, "-m", *SLURM_JOB, "hydra.launcher.timeout_min=1", "hydra.launcher.signal_delay_s=10",
                   "hydra.launcher.max_num_timeout=15", *run, f"paths.log_dir={tmp_path / 'slurm'}", timeout=1200)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "1 completed, 0 failed" in result.stdout
    sweep_dir = sweep_of(tmp_path / "slurm")
    (run_dir,) = [p.parent for p in sweep_dir.glob("*/metrics.json")]
    logs = job_logs(sweep_dir)
    assert "this job is timed-out" in logs and "resuming from" in logs, logs[-3000:]
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["status"] == "completed" and metrics["epochs_completed"] == 64
    reference = finish_reference(reference, tmp_path)
    assert metrics["best_val_acc"] == read_json(reference / "metrics.json")["best_val_acc"]
    assert_same_weights(run_dir, reference)
    assert_queue_empties(slurm)


def test_ddp_uses_the_two_slurm_tasks_as_its_processes(slurm, tmp_path):
    run = [*TINY, "trainer=ddp_cpu", "trainer.devices=2", "trainer.max_epochs=2"]
    result = train(slurm, "-m", *SLURM_JOB, *run, f"paths.log_dir={tmp_path / 'slurm'}")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "1 completed, 0 failed" in result.stdout
    sweep_dir = sweep_of(tmp_path / "slurm")
    (script,) = sweep_dir.glob(".submitit/*/*_submission.sh")
    assert "#SBATCH --ntasks-per-node=2" in script.read_text()
    # Each rank is one of SLURM's tasks, with a log of its own; no rank was started by Lightning.
    for task in (0, 1):
        (log,) = sweep_dir.glob(f".submitit/*/*_{task}_log.err")
        text = log.read_text() + log.with_suffix(".out").read_text()
        assert f"GLOBAL_RANK: {task}, MEMBER: {task + 1}/2" in text, text[-2000:]
        assert f"GLOBAL_RANK: {1 - task}," not in text
    (run_dir,) = [p.parent for p in sweep_dir.glob("*/metrics.json")]
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["status"] == "completed" and metrics["epochs_completed"] == 2
    reference = reference_run(tmp_path, *run)
    expected = read_json(reference / "metrics.json")
    assert (metrics["best_val_acc"], metrics["best_epoch"]) == (expected["best_val_acc"], expected["best_epoch"])
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 2 * 2
    assert_same_weights(run_dir, reference)
    assert_queue_empties(slurm)
