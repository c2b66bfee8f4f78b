"""Scaling out: trainer and launcher configs, launch checks, the SLURM job script, submitit, DDP on
CPU processes, the optuna search and resuming a killed run."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf, open_dict, read_write

from fer_lightning.config.checks import check_trainer
from fer_lightning.errors import ConfigError
from fer_lightning.models.classifier import ExpressionClassifier
from fer_lightning.runs.launch_checks import check_launch, slurm_signal_too_early
from fer_lightning.runs.memory_format import MemoryFormat
from fer_lightning.runs.training import trainer_arguments
from fer_lightning.sweeps.failures import failed_job_raises
from tests.conftest import compose_config
from tests.helpers import ROOT, run_cli, tensorboard_tags

# Tiny and quick: a job is mostly Python start-up.
TINY = [
    "data.synthetic.train=64",
    "data.synthetic.val=32",
    "data.synthetic.test=0",
    "model/width=narrow",
    "trainer.max_epochs=1",
    "callbacks=none",
    "logger=none",
    "print_config=false",
]
SPAWN_LINE = "Starting with 2 processes"


def metrics_files(root: Path) -> list[Path]:
    return sorted(root.rglob("metrics.json"))


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


# --------------------------------------------------------------------------------------- configs
@pytest.mark.parametrize(
    ("trainer", "expected"),
    [
        ("cpu", {"accelerator": "cpu", "channels_last": True}),
        ("gpu", {"accelerator": "gpu", "devices": 1, "precision": "bf16-mixed", "channels_last": True}),
        ("ddp", {"strategy": "ddp", "precision": "bf16-mixed", "channels_last": True, "sync_batchnorm": True}),
        ("ddp_cpu", {"accelerator": "cpu", "devices": 2, "strategy": "ddp_spawn", "channels_last": True}),
        ("multinode", {"strategy": "ddp", "num_nodes": 2, "channels_last": True}),
    ],
)
def test_trainer_options(trainer, expected, tmp_path):
    cfg = compose_config([f"trainer={trainer}", f"paths.log_dir={tmp_path}"])
    for key, value in expected.items():
        actual = (cfg.trainer.memory_format == "channels_last") if key == "channels_last" else cfg.trainer[key]
        assert actual == value, f"trainer={trainer}: {key}={actual!r}"
    assert "memory_format" not in trainer_arguments(cfg.trainer)  # the project's key, not the Trainer's
    assert "channels_last" not in cfg.model  # the hardware's choice stays out of the model's config


@pytest.mark.parametrize("switch", ["trainer/memory_format=contiguous", "trainer.memory_format=contiguous"])
@pytest.mark.parametrize("trainer", ["cpu", "gpu"])
def test_channels_last_can_be_turned_off(trainer, switch, tmp_path):
    cfg = compose_config([f"trainer={trainer}", switch, f"paths.log_dir={tmp_path}"])
    assert cfg.trainer.memory_format == "contiguous"


def test_the_memory_format_reaches_the_network_and_changes_no_result():
    torch.manual_seed(0)
    model = ExpressionClassifier(net={"architecture": "report_cnn", "channels": [4, 4, 8, 8, 8, 8, 8],
                                      "hidden": [16, 8]}).eval()
    faces = torch.rand(3, 1, 48, 48)
    with torch.no_grad():
        expected = model(faces)
    MemoryFormat("channels_last").setup(None, model, "fit")
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous()
               for conv in convs[1:])  # the first has one input channel: both layouts at once
    with torch.no_grad():
        output_of_features = model.net.features(faces)
        torch.testing.assert_close(model(faces), expected, rtol=1e-4, atol=1e-5)
    assert output_of_features.is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(ConfigError, match="trainer.memory_format='nhwc' is not allowed: contiguous or channels_last"):
        check_trainer(OmegaConf.create({"max_epochs": 1, "precision": "32-true", "memory_format": "nhwc"}))


@pytest.mark.parametrize(
    ("overrides", "tasks", "gpus", "nodes"),
    [
        (["trainer=gpu"], 1, 1, 1),
        (["trainer=ddp", "trainer.devices=8"], 8, 8, 1),
        (["trainer=multinode", "trainer.devices=4", "trainer.num_nodes=3"], 4, 4, 3),
    ],
)
def test_slurm_launcher_follows_the_trainer(overrides, tasks, gpus, nodes, tmp_path):
    cfg = compose_config(["hydra/launcher=slurm", *overrides, f"paths.log_dir={tmp_path}"])
    launcher = cfg.hydra.launcher
    assert (launcher.tasks_per_node, launcher.gpus_per_node, launcher.nodes) == (tasks, gpus, nodes)
    assert launcher._target_.endswith("SlurmLauncher")


@pytest.mark.parametrize(("trainer", "gpus"), [("cpu", None), ("ddp_cpu", None), ("gpu", 1), ("ddp", 8)])
def test_slurm_jobs_ask_for_gpus_only_for_gpu_trainers(trainer, gpus, tmp_path):
    devices = ["trainer.devices=8"] if trainer == "ddp" else []
    cfg = compose_config(["hydra/launcher=slurm", f"trainer={trainer}", *devices, f"paths.log_dir={tmp_path}"])
    assert cfg.hydra.launcher.gpus_per_node == gpus


def test_ddp_cpu_joins_slurm_tasks_and_spawns_elsewhere(tmp_path, monkeypatch):
    overrides = ["trainer=ddp_cpu", f"paths.log_dir={tmp_path}"]
    assert compose_config(overrides).trainer.strategy == "ddp_spawn"
    monkeypatch.setenv("SLURM_NTASKS", "2")
    monkeypatch.setenv("SLURM_JOB_NAME", "train")
    cfg = compose_config(overrides)
    assert cfg.trainer.strategy == "ddp"
    check_launch(cfg, multirun=True, environ={"SLURM_NTASKS": "2", "SLURM_JOB_NAME": "train"})
    monkeypatch.setenv("SLURM_JOB_NAME", "interactive")  # an salloc shell: Lightning starts the processes
    assert compose_config(overrides).trainer.strategy == "ddp_spawn"


@pytest.mark.parametrize(("timeout_min", "delay_s", "too_early"), [(1, 40, True), (1, 20, True), (1, 10, False),
                                                                  (240, 120, False), (2, 90, True), (None, 120, False)])
def test_a_signal_before_the_job_can_checkpoint_is_said(timeout_min, delay_s, too_early):
    message = slurm_signal_too_early(OmegaConf.create({"timeout_min": timeout_min, "signal_delay_s": delay_s}))
    assert (message is not None) == too_early
    assert message is None or (f"signal_delay_s={delay_s}" in message and "\n" not in message)


def test_submitit_failures_are_one_line():
    from submitit.core.utils import FailedJobError, UncompletedJobError

    from fer_lightning.cli.entry import user_error_line

    refused = user_error_line(FailedJobError("sbatch: error: Batch job submission failed: Invalid partition name"))
    assert refused.startswith("sbatch refused the sweep's jobs") and "hydra.launcher.<key>=" in refused
    cancelled = user_error_line(UncompletedJobError("Job 7_1 (task: 0) with path /x/7_1_0_result.pkl\n"
                                                    "has not produced any output (state: CANCELLED)\nNo output"))
    assert "7_1" in cancelled and "state: CANCELLED" in cancelled and "\n" not in cancelled
    assert user_error_line(FailedJobError("Job (task=0) failed during processing with trace:\n...")) is None


def test_local_launcher_runs_one_task_per_job(tmp_path):
    cfg = compose_config(["hydra/launcher=local", "trainer=ddp_cpu", f"paths.log_dir={tmp_path}"])
    assert cfg.hydra.launcher.tasks_per_node == 1
    assert cfg.hydra.launcher._target_.endswith("LocalLauncher")


def test_optuna_search_maximises_over_the_four_hyperparameters(tmp_path):
    cfg = compose_config(["hparams_search=optuna", f"paths.log_dir={tmp_path}"])
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.direction == "maximize"
    assert sweeper.storage.startswith("sqlite:///") and sweeper.storage.endswith("/optuna.db")
    assert sweeper.max_failure_rate == 1.0
    assert set(sweeper.params) == {"model.optimizer.lr", "model.optimizer.weight_decay", "model.dropout", "model/width"}
    assert failed_job_raises(cfg.hydra)
    assert not failed_job_raises(compose_config([f"paths.log_dir={tmp_path}"]).hydra)


# ---------------------------------------------------------------------------------- launch checks
def trainer_config(**trainer) -> OmegaConf:
    return OmegaConf.create({"trainer": {"accelerator": "cpu", "devices": 1, "strategy": "auto", **trainer}})


@pytest.mark.parametrize(
    ("trainer", "multirun", "environ", "message"),
    [
        # Script-launched DDP inside a multirun would re-run the sweep for each extra process.
        ({"accelerator": "gpu", "devices": 4, "strategy": "ddp"}, True, {}, "would re-run the whole sweep"),
        ({"accelerator": "cpu", "devices": 2, "strategy": "ddp"}, True, {}, "trainer.strategy=ddp_spawn"),
        ({"accelerator": "gpu", "devices": "auto"}, True, {}, "would re-run the whole sweep"),
        # Under SLURM, one task per device.
        ({"accelerator": "gpu", "devices": 4, "strategy": "ddp"}, True, {"SLURM_NTASKS": "1"},
         "SLURM started 1 task(s) but trainer.devices=4 needs 4"),
        ({"accelerator": "gpu", "devices": 4, "strategy": "ddp", "num_nodes": 2}, False, {"SLURM_NTASKS": "4"},
         "needs 8"),
        ({"accelerator": "gpu", "devices": 1}, True, {"SLURM_NTASKS": "2"}, "needs 1"),
        ({"accelerator": "cpu", "devices": 2, "strategy": "ddp_spawn"}, True, {"SLURM_NTASKS": "2"},
         "use trainer.strategy=ddp"),
        # A local submitit job: tasks are independent copies; gpus_per_node=0 hides the GPUs.
        ({"devices": 1}, True, {"SUBMITIT_LOCAL_NTASKS": "2"}, "independent copies"),
        ({"accelerator": "gpu", "devices": 1}, True, {"SUBMITIT_EXECUTOR": "local", "CUDA_VISIBLE_DEVICES": ""},
         "sees no GPU"),
    ],
)
def test_launch_mismatch_is_one_clear_line(trainer, multirun, environ, message):
    with pytest.raises(ConfigError, match=None) as error:
        check_launch(trainer_config(**trainer), multirun=multirun, environ=environ)
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("trainer", "multirun", "environ"),
    [
        ({"accelerator": "gpu", "devices": 4, "strategy": "ddp"}, False, {}),  # a single run: Lightning re-runs it
        ({"accelerator": "cpu", "devices": 2, "strategy": "ddp_spawn"}, True, {}),
        ({"accelerator": "cpu", "devices": 1}, True, {}),
        ({"accelerator": "gpu", "devices": 4, "strategy": "ddp"}, True, {"SLURM_NTASKS": "4"}),
        ({"accelerator": "gpu", "devices": 4, "strategy": "ddp", "num_nodes": 2}, True, {"SLURM_NTASKS": "8"}),
        # An interactive allocation is not a SLURM launch for Lightning.
        ({"accelerator": "gpu", "devices": 2, "strategy": "ddp"}, False,
         {"SLURM_NTASKS": "1", "SLURM_JOB_NAME": "interactive"}),
        # A rank Lightning (or torchrun) started: the processes exist already.
        ({"accelerator": "cpu", "devices": 2, "strategy": "ddp"}, True, {"LOCAL_RANK": "1"}),
        ({"accelerator": "gpu", "devices": 1}, True, {"SUBMITIT_EXECUTOR": "local", "CUDA_VISIBLE_DEVICES": "0"}),
    ],
)
def test_matching_launch_passes(trainer, multirun, environ):
    check_launch(trainer_config(**trainer), multirun=multirun, environ=environ)


def test_failed_optuna_trial_raises_and_basic_sweep_job_returns_nan(train_config):
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from fer_lightning.cli.train import train_command as train

    for optuna, expect_raise in ((True, True), (False, False)):
        cfg = train_config("model.dropout=1.5", *(["hparams_search=optuna"] if optuna else []))
        with read_write(cfg.hydra), open_dict(cfg.hydra):
            cfg.hydra.mode = RunMode.MULTIRUN
        HydraConfig.instance().set_config(cfg)
        if expect_raise:
            with pytest.raises(ConfigError, match="model.dropout=1.5"):
                train(cfg)
        else:
            assert math.isnan(train(cfg))


# ------------------------------------------------------------------------------- SLURM job script
def fake_slurm_binaries(folder: Path) -> None:
    """sbatch that accepts any script (submitit only needs its reply) and an srun to be found."""
    folder.mkdir()
    (folder / "sbatch").write_text('#!/bin/sh\necho "Submitted batch job 4242"\n')
    (folder / "srun").write_text("#!/bin/sh\nexit 0\n")
    for name in ("sbatch", "srun"):
        (folder / name).chmod(0o755)


def test_slurm_sweep_renders_one_array_job_with_a_task_per_gpu(tmp_path, monkeypatch):
    """The real plugin and submitit write the sbatch script; only sbatch itself and waiting are faked."""
    import submitit
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.utils import JobReturn, JobStatus

    import fer_lightning.cli.train as entry

    fake_slurm_binaries(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")

    def finished(job) -> list[JobReturn]:
        result = JobReturn()
        result.status, result._return_value = JobStatus.COMPLETED, 0.5
        return [result]

    monkeypatch.setattr(submitit.core.core.Job, "results", finished)
    monkeypatch.setattr(sys, "argv", [
        "fer_lightning.train", "-m", "hydra/launcher=slurm", "hydra.launcher.partition=gpu-long",
        "hydra.launcher.timeout_min=90", "hydra.launcher.array_parallelism=2", "trainer=ddp", "trainer.devices=2",
        "model.dropout=0.3,0.4,0.5", f"paths.log_dir={tmp_path / 'out'}",
    ])
    GlobalHydra.instance().clear()
    try:
        entry.hydra_main()
    finally:
        GlobalHydra.instance().clear()

    scripts = list((tmp_path / "out").rglob("*_submission.sh"))
    assert len(scripts) == 1, "one sbatch script for the whole sweep (a job array)"
    script = scripts[0].read_text()
    sweep_dir = scripts[0].parents[2]
    assert (sweep_dir / "multirun.yaml").is_file()
    options = {line.split()[1] for line in script.splitlines() if line.startswith("#SBATCH")}
    for expected in ("--partition=gpu-long", "--array=0-2%2", "--ntasks-per-node=2", "--gpus-per-node=2",
                     "--nodes=1", "--time=90", "--cpus-per-task=8", "--signal=USR2@120"):
        assert expected in options, f"{expected} not in {sorted(options)}"
    srun = [line for line in script.splitlines() if line.startswith("srun ")]
    assert len(srun) == 1 and f"{sys.executable} -u -m submitit.core._submit {sweep_dir}/.submitit/" in srun[0]
    assert len(list(sweep_dir.glob(".submitit/*/*_submitted.pkl"))) == 3  # one pickled job per sweep point


# ----------------------------------------------------------------------------- processes (slow)
@pytest.mark.slow
def test_local_submitit_sweep_runs_jobs_in_their_own_processes_and_reruns_skip_them(tmp_path):
    args = ["-m", "hydra/launcher=local", "model.dropout=0.3,0.5", *TINY, f"paths.log_dir={tmp_path}"]
    result = run_cli("fer_lightning.train", *args)
    assert result.returncode == 0, result.stderr[-3000:]

    sweeps = list(tmp_path.glob("multiruns/default/*/multirun.yaml"))
    assert len(sweeps) == 1, "the jobs and the launcher agree on one sweep directory"
    sweep_dir = sweeps[0].parent
    metrics = metrics_files(tmp_path)
    # Each job in its own subdirectory of the launcher's sweep directory, named after what varied.
    assert [p.parent.parent for p in metrics] == [sweep_dir, sweep_dir]
    assert [p.parent.name for p in metrics] == ["model.dropout=0.3", "model.dropout=0.5"]
    assert all(read_json(p)["status"] == "completed" for p in metrics)
    job_logs = list(sweep_dir.glob(".submitit/*/*_log.out"))
    assert len(job_logs) == 2, "two submitit jobs"
    assert not (tmp_path / "runs").exists()

    checkpoints = {p: p.stat().st_mtime_ns for p in sweep_dir.glob("*/checkpoints/last.ckpt")}
    rerun = run_cli("fer_lightning.train", *args)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "0 completed, 0 failed, 2 skipped" in rerun.stdout
    assert {p: p.stat().st_mtime_ns for p in checkpoints} == checkpoints, "finished jobs are skipped"
    logs = "".join(p.read_text() for p in sweep_dir.glob(".submitit/*/*_log.*"))
    assert logs.count("already finished") == 2


def assert_trained_in_two_processes(run_dir: Path, train_images: int, batch_size: int) -> None:
    """Each of 2 DDP processes sees half the data: half the optimizer steps of one process."""
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["status"] == "completed" and metrics["epochs_completed"] == 1
    assert 0.0 <= metrics["best_val_acc"] <= 1.0 and metrics["best_epoch"] == 0
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == math.ceil(train_images / 2 / batch_size)


@pytest.mark.slow
def test_ddp_cpu_trains_in_two_processes_alone_with_the_default_figures(tmp_path):
    from hydra.core.global_hydra import GlobalHydra

    from fer_lightning.cli.train import train_command as train

    # The shipped callbacks and logger (figures included), not the fast-test set: they must work under DDP.
    cfg = compose_config(["trainer=ddp_cpu", "trainer.devices=2", "model/width=narrow", "trainer.max_epochs=1",
                          "data.synthetic.train=128", "data.synthetic.val=64", "data.synthetic.test=0",
                          "data.batch_size=32", "callbacks.progress_bar=null", "print_config=false",
                          f"paths.log_dir={tmp_path}"], output_dir=tmp_path / "run")
    try:
        best = train(cfg)
    finally:
        GlobalHydra.instance().clear()
    assert_trained_in_two_processes(tmp_path / "run", train_images=128, batch_size=32)
    assert best == pytest.approx(read_json(tmp_path / "run" / "metrics.json")["best_val_acc"])
    images = tensorboard_tags(tmp_path / "run" / "tensorboard")["images"]
    assert {"figures/confusion_matrix", "figures/saliency", "figures/filters"} <= images
    # The second process wrote into the same run directory, not a run of its own (cache/ holds generated faces).
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["cache", "run"]


@pytest.mark.slow
def test_ddp_cpu_inside_a_multirun_starts_no_second_sweep(tmp_path):
    # Lightning's `ddp` would re-run this command line (a whole sweep) for its second process.
    result = run_cli("fer_lightning.train", "-m", "trainer=ddp_cpu", "trainer.devices=2", *TINY,
                     "data.synthetic.train=128", "data.batch_size=32", f"paths.log_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (result.stdout + result.stderr).count(SPAWN_LINE) == 1
    sweeps = list(tmp_path.glob("multiruns/*/*/multirun.yaml"))
    runs = [p.parent for p in metrics_files(tmp_path)]
    assert len(sweeps) == 1 and len(runs) == 1 and runs[0].parent == sweeps[0].parent
    assert_trained_in_two_processes(runs[0], train_images=128, batch_size=32)
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_optuna_search_survives_a_failed_trial_and_reports_the_best(tmp_path):
    # seed=0 makes TPE's first (random) picks 1.5, then 0.3: the first trial fails its config check.
    result = run_cli("fer_lightning.train", "-m", "hparams_search=optuna", "hydra.sweeper.n_trials=2", "seed=0",
                     "model.dropout=choice(0.3,1.5)", "model.optimizer.lr=0.001", "model.optimizer.weight_decay=0.0001",
                     *TINY, f"paths.log_dir={tmp_path}")
    assert result.returncode == 1, result.stderr[-3000:]  # the search finished; one trial failed
    assert "1 completed, 1 failed, 0 skipped" in result.stdout
    statuses = sorted(read_json(p)["status"] for p in metrics_files(tmp_path))
    assert statuses == ["completed", "failed"]
    results = OmegaConf.load(next(tmp_path.rglob("optimization_results.yaml")))
    assert dict(results.best_params) == {"model.dropout": 0.3}
    completed = next(p for p in metrics_files(tmp_path) if read_json(p)["status"] == "completed")
    assert results.best_value == pytest.approx(read_json(completed)["best_val_acc"])


@pytest.mark.slow
def test_killed_run_resumes_from_last_checkpoint(tmp_path):
    args = ["callbacks=none", "logger=none", "data.synthetic.train=256", "data.batch_size=64", "data.synthetic.val=64",
            "data.synthetic.test=0", "model/width=narrow", "trainer.max_epochs=3", "print_config=false",
            f"paths.log_dir={tmp_path}"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "NO_ALBUMENTATIONS_UPDATE": "1"}
    process = subprocess.Popen([sys.executable, "-m", "fer_lightning.train", *args], cwd=ROOT, env=environment,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        last = None
        deadline = time.monotonic() + 300
        while process.poll() is None and time.monotonic() < deadline:
            found = list(tmp_path.glob("runs/*/*/checkpoints/last.ckpt"))
            if found:
                size = found[0].stat().st_size
                time.sleep(0.2)  # never kill in the middle of writing it
                if found[0].stat().st_size == size:
                    last = found[0]
                    process.send_signal(signal.SIGKILL)
                    break
            time.sleep(0.05)
    finally:
        if process.poll() is None and last is None:
            process.kill()
        process.wait()
    assert last is not None and process.returncode == -signal.SIGKILL, "killed after the first checkpoint"
    run_dir = last.parents[1]
    assert read_json(run_dir / "metrics.json")["status"] == "running"
    killed_at = torch.load(last, weights_only=True)["epoch"]
    assert killed_at < 2, "the run was killed before it finished"

    result = run_cli("fer_lightning.train", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming from" in result.stdout + result.stderr
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["status"] == "completed" and metrics["epochs_completed"] == 3
    assert torch.load(last, weights_only=True)["global_step"] == 3 * 4, "3 epochs of 4 batches, none repeated"


@pytest.mark.slow
def test_ddp_cpu_with_resident_data_steps_each_rank_equally_on_its_share(tmp_path):
    result = run_cli("fer_lightning.train", "trainer=ddp_cpu", "trainer.devices=2", *TINY, "augmentation=none",
                     "data.device_augment=light", "data.resident=true", "data.synthetic.train=129",
                     "data.batch_size=32", f"paths.log_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = [p.parent for p in metrics_files(tmp_path)]
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["status"] == "completed" and metrics["epochs_completed"] == 1
    # 129 faces: one rank's share is padded to 65, so both take ceil(65 / 32) = 3 steps.
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 3
