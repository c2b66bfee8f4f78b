"""Checks of a composed config that run before any data is read or any model is built.

Each failure is one line naming the key, the value and what is allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from fer_lightning.classes import IMAGE_SIZE, NUM_CLASSES
from fer_lightning.config.choices import (
    DATA_FORMATS,
    DATA_SOURCES,
    MIXING_MODES,
    ON_BAD_ROWS,
    PRECISIONS,
    SAMPLERS,
    SCHEDULER_INTERVALS,
    allowed,
)
from fer_lightning.errors import ConfigError


def _get(cfg: DictConfig, key: str, default: Any = None) -> Any:
    return OmegaConf.select(cfg, key, default=default)


def _fail(key: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"{key}={value!r} is not allowed: {allowed}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_rate(key: str, value: Any) -> None:
    if not _is_number(value) or not 0.0 <= value < 1.0:
        _fail(key, value, "a number in [0, 1)")


def check_positive_int(key: str, value: Any, minimum: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        _fail(key, value, f"a whole number >= {minimum}")


def check_model(model: DictConfig) -> None:
    channels, hidden = list(model.channels), list(model.hidden)
    for i, width in enumerate(channels):
        check_positive_int(f"model.channels[{i}]", width)
    for i, width in enumerate(hidden):
        check_positive_int(f"model.hidden[{i}]", width)
    pools = list(model.pool_after)
    for i, layer in enumerate(pools):
        if not isinstance(layer, int) or not 1 <= layer <= len(channels):
            _fail(f"model.pool_after[{i}]", layer, f"a conv layer number in 1..{len(channels)}")
    if IMAGE_SIZE >> len(set(pools)) < 1:
        _fail("model.pool_after", pools, f"at most {IMAGE_SIZE.bit_length() - 1} max-pools for {IMAGE_SIZE}px input")
    schedule = list(model.dropout_schedule)
    if len(schedule) != len(channels) + len(hidden):
        _fail("model.dropout_schedule", schedule,
              f"{len(channels) + len(hidden)} rates (one per conv block, then one per hidden layer)")
    for i, rate in enumerate(schedule):
        check_rate(f"model.dropout_schedule[{i}]", rate)
    if model.dropout is not None:
        check_rate("model.dropout", model.dropout)
    check_rate("model.label_smoothing", model.label_smoothing)
    weights = model.class_weights
    if weights is not None and weights != "balanced":
        if isinstance(weights, str) or len(weights) != NUM_CLASSES or any(
            not _is_number(w) or w < 0 for w in weights
        ):
            _fail("model.class_weights", weights, f'null, "balanced" or {NUM_CLASSES} non-negative numbers')
    mixing = _get(model, "mixing")
    if mixing is not None:
        if mixing not in MIXING_MODES:
            _fail("model.mixing", mixing, allowed((None, *MIXING_MODES)))
        alpha = _get(model, "mixing_alpha")
        if not _is_number(alpha) or alpha <= 0:
            _fail("model.mixing_alpha", alpha, "a number > 0 (the Beta distribution's parameter)")
        prob = _get(model, "mixing_prob")
        if not _is_number(prob) or not 0.0 < prob <= 1.0:
            _fail("model.mixing_prob", prob, "a number in (0, 1]")
    optimizer = model.optimizer
    if optimizer is not None:
        lr = _get(optimizer, "lr")
        if not _is_number(lr) or lr <= 0:
            _fail("model.optimizer.lr", lr, "a number > 0")
        decay = _get(optimizer, "weight_decay", 0.0)
        if not _is_number(decay) or decay < 0:
            _fail("model.optimizer.weight_decay", decay, "a number >= 0")
    if model.scheduler_interval not in SCHEDULER_INTERVALS:
        _fail("model.scheduler_interval", model.scheduler_interval, allowed(SCHEDULER_INTERVALS))


def check_data(data: DictConfig) -> None:
    if data.source not in DATA_SOURCES:
        _fail("data.source", data.source, allowed(DATA_SOURCES))
    if data.format not in DATA_FORMATS:
        _fail("data.format", data.format, allowed(DATA_FORMATS))
    check_positive_int("data.batch_size", data.batch_size)
    check_positive_int("data.eval_batch_size", data.eval_batch_size)
    check_positive_int("data.num_workers", data.num_workers, minimum=0)
    if not _is_number(data.val_fraction) or not 0.0 < data.val_fraction < 1.0:
        _fail("data.val_fraction", data.val_fraction, "a number in (0, 1)")
    if data.on_bad_rows not in ON_BAD_ROWS:
        _fail("data.on_bad_rows", data.on_bad_rows, allowed(ON_BAD_ROWS))
    if data.sampler not in SAMPLERS:
        _fail("data.sampler", data.sampler, allowed(SAMPLERS))
    if data.source == "synthetic":
        for split in ("train", "val"):
            check_positive_int(f"data.synthetic.{split}", data.synthetic[split])
        check_positive_int("data.synthetic.test", data.synthetic.test, minimum=0)
    else:
        if not data.path:
            _fail("data.path", data.path, "a file or folder (data=fer2013|homework|folder data.path=...)")
        if not Path(data.path).exists():
            raise ConfigError(f"data.path={data.path}: no such file or folder")
    if data.test_path and not Path(data.test_path).exists():
        raise ConfigError(f"data.test_path={data.test_path}: no such file or folder")


def check_trainer(trainer: DictConfig) -> None:
    check_positive_int("trainer.max_epochs", trainer.max_epochs)
    if str(trainer.precision) not in PRECISIONS:
        _fail("trainer.precision", trainer.precision, allowed(PRECISIONS))


def check_train_config(cfg: DictConfig) -> None:
    """Raise ConfigError for the first impossible value in a training config."""
    missing = sorted(k for k in OmegaConf.missing_keys(cfg) if not k.startswith("hydra."))
    if missing:
        raise ConfigError(f"{missing[0]} must be set (for example {missing[0]}=...)")
    check_model(cfg.model)
    check_data(cfg.data)
    check_trainer(cfg.trainer)
