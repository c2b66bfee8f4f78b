"""Training: config checks, run directory, data, model, trainer, fit, test, metrics.json."""

from __future__ import annotations

import inspect
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from fer_lightning.config.checks import check_train_config
from fer_lightning.config.tree import print_config_tree
from fer_lightning.errors import FerError, WriteError
from fer_lightning.runs.directory import RunDirectory, write_json_atomic
from fer_lightning.runs.fit_summary import FitSummary, fit_result
from fer_lightning.runs.launch_checks import check_launch
from fer_lightning.runs.memory_format import MemoryFormat
from fer_lightning.runs.provenance import PROVENANCE_FILE, provenance
from fer_lightning.runs.tracking import describe_run, store_files

log = logging.getLogger(__name__)


# torch 2.13 deprecates LeafSpec, which Lightning 2.6 still builds for every batch: a notice on every
# run that no user can act on.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")

# Lightning suggests srun to every run on a machine where SLURM is installed. A run outside a SLURM
# job was meant to be one; inside a job (a hand-written sbatch script without srun) the hint stays.
if "SLURM_JOB_ID" not in os.environ:
    warnings.filterwarnings("ignore", message=r".*The `srun` command is available on your system but is not used")

# Keys of the trainer group that the project applies itself (runs/memory_format.py).
PROJECT_TRAINER_KEYS = ("memory_format",)


def instantiate_named(group: DictConfig | None) -> list[Any]:
    """Instantiate every non-null entry of a callbacks/logger group."""
    if not group:
        return []
    from hydra.errors import InstantiationException

    try:
        return [instantiate(conf) for conf in group.values() if conf is not None and "_target_" in conf]
    except InstantiationException as error:
        if isinstance(error.__cause__, FerError):  # a callback's own config check: say it in one line
            raise error.__cause__ from None
        raise


def trainer_arguments(trainer: DictConfig) -> dict[str, Any]:
    """The trainer config (resolved) less the keys that are the project's, not ``pytorch_lightning.Trainer``'s."""
    arguments = OmegaConf.to_container(trainer, resolve=True)
    return {key: value for key, value in arguments.items() if key not in PROJECT_TRAINER_KEYS}


def hyperparameters(cfg: DictConfig) -> dict[str, Any]:
    """The flat, comparable values TensorBoard's HPARAMS tab shows for each run."""
    model, data = cfg.model, cfg.data
    values = {
        "model/architecture": model.net.get("architecture", "report_cnn"),
        "model/channels": "-".join(str(c) for c in model.net.get("channels", [])),
        "model/dropout": model.dropout if model.dropout is not None else max(model.net.get("dropout_schedule") or [0.0]),
        "model/label_smoothing": model.label_smoothing,
        "optimizer": str(model.optimizer._target_).rsplit(".", 1)[-1],
        "optimizer/lr": model.optimizer.lr,
        "optimizer/weight_decay": model.optimizer.get("weight_decay", 0.0),
        "scheduler": str(model.scheduler._target_).rsplit(".", 1)[-1] if model.scheduler else "none",
        "data/batch_size": data.batch_size,
        "augmentation": "none" if not data.augmentation.train else
        ",".join(t._target_.rsplit(".", 1)[-1] for t in data.augmentation.train.transforms),
        "trainer/max_epochs": cfg.trainer.max_epochs,
        "trainer/precision": str(cfg.trainer.precision),
        "seed": cfg.seed,
    }
    return {k: v for k, v in values.items() if v is not None}


def fit_and_test(cfg: DictConfig, run: RunDirectory) -> tuple[dict[str, Any], list[Any]]:
    import pytorch_lightning as pl

    pl.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    log.info("data: %s", datamodule.describe())
    model = instantiate(cfg.model)
    log.info("network: %s, %s parameters; max_epochs=%s precision=%s seed=%s", type(model.net).__name__,
             f"{sum(p.numel() for p in model.parameters()):,}", cfg.trainer.max_epochs, cfg.trainer.precision, cfg.seed)
    log.info("writing %s (its config: .hydra/config.yaml; every line of this screen: train.log)", run.path)
    teacher = model.hparams.distill["teacher"]
    if teacher:
        from fer_lightning.checkpoints.predictor import load_predictor

        predictor = load_predictor(teacher)
        model.attach_teacher(predictor.module)
        log.info("learning from the teacher %s (%s of %d member(s)), temperature %s, weight %s", teacher,
                 predictor.kind, predictor.member_count, model.hparams.distill["temperature"],
                 model.hparams.distill["weight"])
    start = cfg.get("ckpt_path") or cfg.get("init_from")
    if start:
        from fer_lightning.checkpoints.model_file import load_initial_weights

        load_initial_weights(model, start)
        log.info("starting from the weights of %s", start)
    callbacks = [*instantiate_named(cfg.get("callbacks")), FitSummary(),
                 MemoryFormat(cfg.trainer.get("memory_format", "contiguous"))]
    loggers = instantiate_named(cfg.get("logger"))
    trainer = instantiate(trainer_arguments(cfg.trainer), callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        # TensorBoard's hparams tab needs the metric declared up front; CSV takes no metrics here.
        if "metrics" in inspect.signature(logger.log_hyperparams).parameters:
            logger.log_hyperparams(hyperparameters(cfg), {"hp/best_val_acc": 0.0})
        else:
            logger.log_hyperparams(hyperparameters(cfg))
    hydra_cfg = HydraConfig.get()
    describe_run(loggers, cfg, run.path,
                 Path(hydra_cfg.sweep.dir) if hydra_cfg.mode == RunMode.MULTIRUN else None)

    resume = run.resume_checkpoint()
    if resume is not None:
        from fer_lightning.checkpoints.model_file import check_resume_fits

        check_resume_fits(resume, model)
        log.info("resuming from %s", resume)
    started = time.perf_counter()
    trainer.fit(model, datamodule=datamodule, ckpt_path=str(resume) if resume else None,
                weights_only=True)
    fitted = fit_result(trainer, model)  # also right when the fit ran in spawned processes
    # FitSummary's count includes the earlier processes of a resumed run (kept in last.ckpt).
    train_seconds = fitted.train_seconds if fitted.train_seconds is not None else time.perf_counter() - started

    checkpoint = trainer.checkpoint_callback
    best_path = checkpoint.best_model_path if checkpoint is not None else ""
    test_acc = None
    if cfg.test and datamodule.has_split("test"):
        results = trainer.test(model, datamodule=datamodule, ckpt_path=best_path or None, weights_only=True,
                               verbose=False)
        test_acc = results[0].get("acc/test") if results else None
        if test_acc is not None:
            log.info("test: acc %.4f with the best checkpoint", test_acc)
    return {
        "best_val_acc": fitted.best_val_acc,
        "best_epoch": fitted.best_epoch,
        "epochs_completed": fitted.epochs_completed,
        "test_acc": test_acc,
        "best_checkpoint": str(Path(best_path).resolve()) if best_path else None,
        "last_checkpoint": str((run.checkpoint_dir / "last.ckpt").resolve()) if (run.checkpoint_dir / "last.ckpt").exists() else None,
        "train_seconds": round(train_seconds, 2),
        "interrupted": bool(trainer.interrupted),
    }, loggers


def train(cfg: DictConfig) -> float | None:
    """Train one run; returns the best validation accuracy (what a hyperparameter sweeper maximises).

    A command refused because the same run is live elsewhere raises before touching anything of it.
    """
    hydra_cfg = HydraConfig.get()
    run = RunDirectory(hydra_cfg.runtime.output_dir)
    # Lightning's own reading of the launcher's rank (RANK, LOCAL_RANK, SLURM_PROCID), before any Trainer exists.
    leader = rank_zero_only.rank == 0
    if leader:
        run.check_writable()
        run.acquire_lock()
    try:
        return train_locked(cfg, run, hydra_cfg, leader)
    except (FerError, FloatingPointError, OSError) as error:
        if isinstance(error, OSError):
            # A full disk or a lost permission, most often while saving a checkpoint: one line naming the
            # file, or the run directory when the error names none (a failed write names no file).
            error = WriteError(f"{error.filename or run.path}: cannot write ({error.strerror or error}); "
                               "last.ckpt keeps the last finished epoch")
        elif isinstance(error, WriteError) and "last.ckpt keeps" not in str(error):
            error = WriteError(f"{error}; last.ckpt keeps the last finished epoch")
        # The run says why it stopped; the command line decides what the failure means (exit or go on).
        if leader:
            try:
                run.write_metrics(status="failed", error=str(error))
            except (OSError, FerError):
                pass  # the same full disk: the one line on screen says it
        if isinstance(error, WriteError):
            raise error from None
        raise
    except Exception as error:
        if leader:
            run.write_metrics(status="failed", error=f"{type(error).__name__}: {error}")
        raise
    finally:
        if leader:
            run.release_lock()


def train_locked(cfg: DictConfig, run: RunDirectory, hydra_cfg: DictConfig, leader: bool) -> float | None:
    check_train_config(cfg)
    check_launch(cfg, hydra_cfg.mode == RunMode.MULTIRUN)
    # Every rank skips a finished run: a rank that trained alone would wait for the others forever.
    if run.status == "completed" and not cfg.retrain:
        metrics = run.read_metrics()
        if leader:
            log.info("already finished in %s (best_val_acc=%s); retrain=true trains it again",
                     run.path, metrics.get("best_val_acc"))
        return metrics.get("best_val_acc")
    if leader and run.status == "completed":
        log.info("previous results archived to %s", run.archive_previous())
    if cfg.print_config and leader:
        print_config_tree(cfg)
    if leader:
        tags = [str(tag) for tag in cfg.get("tags") or []]
        write_json_atomic(run.path / PROVENANCE_FILE, provenance(tags, str(cfg.trainer.precision)))
        run.write_metrics(status="running", error=None, overrides=list(hydra_cfg.overrides.task), tags=tags,
                          started_at=time.strftime("%Y-%m-%dT%H:%M:%S"))
    metrics, loggers = fit_and_test(cfg, run)
    if leader:
        status = "interrupted" if metrics.pop("interrupted") else "completed"
        run.write_metrics(status=status, finished_at=time.strftime("%Y-%m-%dT%H:%M:%S"), **metrics)
        best = metrics.get("best_checkpoint")
        store_files(loggers, {"run": [run.metrics_path, run.path / PROVENANCE_FILE, run.path / ".hydra" / "config.yaml"],
                              "checkpoints": [Path(best)] if best else []})
        log.info("%s: best val acc %.4f at epoch %s -> %s", status, metrics["best_val_acc"],
                 metrics["best_epoch"], run.metrics_path)
    return metrics["best_val_acc"]
