"""Checks of a composed config that run before any data is read or any model is built.

Each failure is one line naming the key, the value and what is allowed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from fer_lightning.classes import IMAGE_SIZE, NUM_CLASSES
from fer_lightning.config.choices import (
    ARCHITECTURES,
    ATTRIBUTION_METHODS,
    DATA_FORMATS,
    DETECT_FACES,
    EVAL_SPLITS,
    EXPORT_FORMATS,
    EXPORT_SUFFIXES,
    FACE_DETECTORS,
    FILE_FORMATS,
    INFERENCE_BACKENDS,
    MAX_BATCH,
    MAX_STAGES,
    MAX_WIDTH,
    MEMORY_FORMATS,
    MIXING_MODES,
    ON_BAD_ROWS,
    ONNX_OPSETS,
    ONNX_PRECISIONS,
    PACK_ENCODINGS,
    PRECISIONS,
    PREDICT_OUTPUT_SUFFIXES,
    SAMPLERS,
    SCHEDULER_INTERVALS,
    SEED_RANGE,
    SYNTHETIC,
    THREAD_POLICIES,
    TTA_CHOICES,
    allowed,
)
from fer_lightning.errors import ConfigError

RUN_NAME = re.compile(r"[A-Za-z0-9._=+,-]{1,100}")


def _get(cfg: DictConfig, key: str, default: Any = None) -> Any:
    return OmegaConf.select(cfg, key, default=default)


def _fail(key: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"{key}={value!r} is not allowed: {allowed}")


def _is_number(value: Any) -> bool:
    """A finite int or float: NaN and infinity are no setting's value."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _value_name(value: Any) -> str:
    """A value as it is typed on the command line: true, false, null."""
    if value is None or isinstance(value, bool):
        return "null" if value is None else str(value).lower()
    return str(value)


def check_choice(key: str, value: Any, choices: tuple) -> None:
    """``value`` is one of ``choices``, of the same type: 1 is not true, "true" is not true."""
    if not any(type(value) is type(choice) and value == choice for choice in choices):
        raise ConfigError(f"{key}={value!r}: allowed values are {', '.join(map(_value_name, choices))}")


def check_bool(key: str, value: Any) -> None:
    if not isinstance(value, bool):
        _fail(key, value, "true or false")


def check_seed(value: Any) -> None:
    low, high = SEED_RANGE
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        _fail("seed", value, f"a whole number in {low}..{high}")


def check_file_name(key: str, value: Any, required: bool = True) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str) or not value.strip():
        _fail(key, value, "a file name" + ("" if required else " or null"))


def check_exists(key: str, value: str) -> None:
    if not Path(value).exists():
        raise ConfigError(f"{key}={value}: no such file or folder")


def check_rate(key: str, value: Any) -> None:
    if not _is_number(value) or not 0.0 <= value < 1.0:
        _fail(key, value, "a number in [0, 1)")


def check_positive_int(key: str, value: Any, minimum: int = 1, maximum: int | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        _fail(key, value, f"a whole number >= {minimum}")
    if maximum is not None and value > maximum:
        _fail(key, value, f"a whole number from {minimum} to {maximum:,}")


def check_model(model: DictConfig) -> None:
    net = _get(model, "net") or OmegaConf.create({})
    architecture = _get(net, "architecture", "report_cnn")
    if architecture not in ARCHITECTURES:
        _fail("model.net.architecture", architecture, allowed(ARCHITECTURES))
    channels = list(_get(net, "channels") or [])
    if "channels" in net and not channels:
        _fail("model.net.channels", channels, "at least one conv layer width, e.g. [16,32,64,128,256,512,512]")
    for i, width in enumerate(channels):
        check_positive_int(f"model.net.channels[{i}]", width, maximum=MAX_WIDTH)
    if architecture == "report_cnn":
        check_report_cnn(net, channels)
    elif len(channels) > MAX_STAGES[architecture]:
        _fail("model.net.channels", channels, f"at most {MAX_STAGES[architecture]} stages for {IMAGE_SIZE}px input")
    if architecture == "resnet" and "blocks" in net:
        blocks = list(net.blocks)
        if len(blocks) != len(channels):
            _fail("model.net.blocks", blocks, f"{len(channels)} block counts (one per stage of model.net.channels)")
        for i, count in enumerate(blocks):
            check_positive_int(f"model.net.blocks[{i}]", count)
    if architecture == "separable" and "stem" in net:
        check_positive_int("model.net.stem", net.stem)
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
    distill = _get(model, "distill")
    distill_settings(OmegaConf.to_container(distill) if OmegaConf.is_config(distill) else distill, teacher_must_exist=True)
    if model.scheduler_interval not in SCHEDULER_INTERVALS:
        _fail("model.scheduler_interval", model.scheduler_interval, allowed(SCHEDULER_INTERVALS))


DISTILL_DEFAULTS = {"teacher": None, "temperature": 4.0, "weight": 0.7}


def distill_settings(settings: Mapping[str, Any] | None, teacher_must_exist: bool = False) -> dict[str, Any]:
    """``model.distill`` checked: a teacher (or null), a temperature > 0, a weight in [0, 1]."""
    merged = {**DISTILL_DEFAULTS, **dict(settings or {})}
    unknown = sorted(set(merged) - set(DISTILL_DEFAULTS))
    if unknown:
        raise ConfigError(f"model.distill.{unknown[0]}: not a setting (teacher, temperature, weight)")
    teacher, temperature, weight = merged["teacher"], merged["temperature"], merged["weight"]
    if teacher is not None and (not isinstance(teacher, str) or not teacher.strip()):
        raise ConfigError(f"model.distill.teacher={teacher!r} is not allowed: an ensemble file, a checkpoint, a run "
                          "directory or pretrained[:name]")
    for key, value, ok in (("temperature", temperature, lambda v: v > 0), ("weight", weight, lambda v: 0 <= v <= 1)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or not ok(value):
            raise ConfigError(f"model.distill.{key}={value!r} is not allowed: "
                              + ("a number > 0" if key == "temperature" else "a number in [0, 1]"))
    # Training needs the teacher's file; a student's checkpoint only records where it was.
    if teacher_must_exist and teacher is not None and teacher.split(":")[0] != "pretrained" and not Path(teacher).exists():
        raise ConfigError(f"model.distill.teacher={teacher}: no such file or folder")
    return {"teacher": teacher, "temperature": float(temperature), "weight": float(weight)}


def check_report_cnn(net: DictConfig, channels: list) -> None:
    hidden = list(_get(net, "hidden") or [])
    for i, width in enumerate(hidden):
        check_positive_int(f"model.net.hidden[{i}]", width, maximum=MAX_WIDTH)
    pools = list(_get(net, "pool_after") or [])
    for i, layer in enumerate(pools):
        if not isinstance(layer, int) or not 1 <= layer <= len(channels):
            _fail(f"model.net.pool_after[{i}]", layer, f"a conv layer number in 1..{len(channels)}")
    if IMAGE_SIZE >> len(set(pools)) < 1:
        _fail("model.net.pool_after", pools, f"at most {IMAGE_SIZE.bit_length() - 1} max-pools for {IMAGE_SIZE}px input")
    schedule = list(_get(net, "dropout_schedule") or [])
    if schedule and len(schedule) != len(channels) + len(hidden):
        _fail("model.net.dropout_schedule", schedule,
              f"{len(channels) + len(hidden)} rates (one per conv block, then one per hidden layer)")
    for i, rate in enumerate(schedule):
        check_rate(f"model.net.dropout_schedule[{i}]", rate)


def check_data_source(data: DictConfig) -> None:
    """Where the data comes from: a known format, and files that exist."""
    if data.format not in DATA_FORMATS:
        _fail("data.format", data.format, allowed(DATA_FORMATS))
    path, test_path = _get(data, "path"), _get(data, "test_path")
    if data.format != SYNTHETIC:
        if not path:
            _fail("data.path", path, "a file or folder (data=fer2013|homework|folder data.path=...)")
        check_exists("data.path", path)
    elif path:
        raise ConfigError(f"data.path={path}: the synthetic faces (data=synthetic, the default) read no file; "
                          "name the data that reads it: data=fer2013, data=homework or data=folder")
    if test_path:
        check_exists("data.test_path", test_path)


def check_data(data: DictConfig) -> None:
    check_data_source(data)
    check_positive_int("data.batch_size", data.batch_size, maximum=MAX_BATCH)
    check_positive_int("data.eval_batch_size", data.eval_batch_size, maximum=MAX_BATCH)
    check_positive_int("data.num_workers", data.num_workers, minimum=0)
    if not _is_number(data.val_fraction) or not 0.0 < data.val_fraction < 1.0:
        _fail("data.val_fraction", data.val_fraction, "a number in (0, 1)")
    folds = _get(data, "folds")
    if folds is not None:
        check_positive_int("data.folds", folds, minimum=2, maximum=100)
        fold = _get(data, "fold", 0)
        if not isinstance(fold, int) or isinstance(fold, bool) or not 0 <= fold < folds:
            _fail("data.fold", fold, f"a fold number from 0 to {folds - 1} (data.folds={folds})")
    if data.on_bad_rows not in ON_BAD_ROWS:
        _fail("data.on_bad_rows", data.on_bad_rows, allowed(ON_BAD_ROWS))
    if data.sampler not in SAMPLERS:
        _fail("data.sampler", data.sampler, allowed(SAMPLERS))
    if data.format == SYNTHETIC:
        for split in ("train", "val"):
            check_positive_int(f"data.synthetic.{split}", data.synthetic[split])
        check_positive_int("data.synthetic.test", data.synthetic.test, minimum=0)


def check_trainer(trainer: DictConfig) -> None:
    check_positive_int("trainer.max_epochs", trainer.max_epochs)
    if str(trainer.precision) not in PRECISIONS:
        _fail("trainer.precision", trainer.precision, allowed(PRECISIONS))
    if _get(trainer, "memory_format", "contiguous") not in MEMORY_FORMATS:
        _fail("trainer.memory_format", trainer.memory_format, allowed(MEMORY_FORMATS))


def check_all_set(cfg: DictConfig, skip: tuple[str, ...] = ()) -> None:
    """Every ``???`` of the config is given (except below the ``skip`` prefixes)."""
    missing = sorted(k for k in OmegaConf.missing_keys(cfg) if not k.startswith(("hydra.", *skip)))
    if missing:
        raise ConfigError(f"{missing[0]} must be set (for example {missing[0]}=...)")


def check_run_name(value: Any) -> None:
    """``name`` is one folder's name under outputs/runs/: never a path that leaves it."""
    if not isinstance(value, str) or not RUN_NAME.fullmatch(value) or set(value) <= {"."}:
        _fail("name", value, "one folder name: letters, digits and . _ - = + , (no /, no ..)")


def check_train_config(cfg: DictConfig) -> None:
    """Raise ConfigError for the first impossible value in a training config."""
    check_all_set(cfg)
    check_run_name(cfg.name)
    given, older = _get(cfg, "ckpt_path"), _get(cfg, "init_from")
    if given and older and str(given) != str(older):
        raise ConfigError(f"ckpt_path={given} and init_from={older} name two starting points; give ckpt_path alone")
    check_seed(cfg.seed)
    check_model(cfg.model)
    check_data(cfg.data)
    check_trainer(cfg.trainer)


# ------------------------------------------------------------------------- inference commands
def check_inference_options(cfg: DictConfig) -> None:
    """What evaluate and predict share: the model, batches, overwriting (tta: with the face options, or
    evaluate's own)."""
    # A data group's own ??? (data=homework: data.path) is needed only when its files are read.
    check_all_set(cfg, skip=("data.",))
    check_file_name("ckpt_path", cfg.ckpt_path)
    check_positive_int("batch_size", cfg.batch_size, maximum=MAX_BATCH)
    check_bool("overwrite", _get(cfg, "overwrite", False))


def check_evaluate_config(cfg: DictConfig) -> None:
    """Raise ConfigError for the first impossible value of ``python -m fer_lightning.evaluate``."""
    check_inference_options(cfg)
    check_choice("tta", cfg.tta, TTA_CHOICES)
    check_choice("split", cfg.split, EVAL_SPLITS)
    check_seed(cfg.seed)
    check_bool("calibrate", _get(cfg, "calibrate", False))
    check_file_name("output", _get(cfg, "output"), required=False)
    test_path = _get(cfg, "data.test_path")
    check_file_name("data.test_path", test_path, required=False)
    if test_path:
        check_exists("data.test_path", test_path)
    elif _get(cfg, "data._target_"):  # data=<group> on the command line
        check_data_source(cfg.data)


def check_face_settings(detect_faces: Any, face_detector: Any, margin: Any, min_face_size: Any, tta: Any,
                        align: Any = True, uncertain_below: Any = 0.0) -> None:
    """How faces are found, cut and classified (conf/face_options.yaml): the one check that predict, the
    demo and the Python API's Recognizer share. ``detect_faces`` None means auto."""
    if detect_faces is not None:
        check_choice("detect_faces", detect_faces, DETECT_FACES)
    check_choice("face_detector", face_detector, FACE_DETECTORS)
    check_bool("align", align)
    if not _is_number(uncertain_below) or not 0 <= uncertain_below <= 1:
        _fail("uncertain_below", uncertain_below, "a probability from 0 to 1 (0: no face is marked uncertain)")
    # Beyond 1 the face fills less than a third of the 48x48 crop: nothing like the training faces.
    if not _is_number(margin) or not 0 <= margin <= 1:
        _fail("margin", margin, "a number from 0 to 1 (the border around each face, as a fraction of its size)")
    check_positive_int("min_face_size", min_face_size)
    check_choice("tta", tta, TTA_CHOICES)


def check_face_options(cfg: DictConfig) -> None:
    """The face options of a command's config (predict, the demo)."""
    check_face_settings(cfg.detect_faces, _get(cfg, "face_detector", FACE_DETECTORS[0]), cfg.margin,
                        cfg.min_face_size, _get(cfg, "tta", "none"), _get(cfg, "align", True),
                        _get(cfg, "uncertain_below", 0.0))


def check_predict_config(cfg: DictConfig) -> None:
    """Raise ConfigError for the first impossible value of ``python -m fer_lightning.predict``."""
    check_inference_options(cfg)
    check_file_name("input", cfg.input)
    check_exists("input", cfg.input)
    check_file_name("output", cfg.output)
    check_backend(_get(cfg, "backend", "torch"), _get(cfg, "precision", "fp32"), _get(cfg, "tta", "none"))
    check_threads(_get(cfg, "threads", "auto"))
    if not cfg.output.lower().endswith(PREDICT_OUTPUT_SUFFIXES):
        raise ConfigError(f"output={cfg.output}: predictions are written as {' or '.join(PREDICT_OUTPUT_SUFFIXES)}")
    check_face_options(cfg)
    check_positive_int("every_n_frames", _get(cfg, "every_n_frames", 1))
    check_positive_int("detect_every", _get(cfg, "detect_every", 1))
    smoothing = _get(cfg, "track_smoothing", 0.5)
    if not _is_number(smoothing) or not 0 <= smoothing < 1:
        _fail("track_smoothing", smoothing, "a number from 0 (no smoothing) up to, not including, 1")
    check_bool("annotate", cfg.annotate)
    check_file_name("annotate_dir", _get(cfg, "annotate_dir"), required=False)


def is_loopback(host: str) -> bool:
    """Whether a server bound to ``host`` is reachable from this machine only."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_demo_config(cfg: DictConfig) -> None:
    """Raise ConfigError for the first impossible value of ``python -m fer_lightning.demo``."""
    check_all_set(cfg)
    check_file_name("ckpt_path", cfg.ckpt_path)
    if not OmegaConf.is_list(cfg.models):
        _fail("models", cfg.models, "a list of folders, e.g. models=[outputs/multiruns/cpu_ensemble]")
    for index, folder in enumerate(cfg.models):
        check_file_name(f"models[{index}]", folder)
        if not Path(folder).is_dir():
            raise ConfigError(f"models[{index}]={folder}: no such folder")
    check_positive_int("max_models", cfg.max_models)
    check_positive_int("port", cfg.port)
    if cfg.port > 65535:
        _fail("port", cfg.port, "a port number from 1 to 65535")
    check_file_name("host", cfg.host)
    check_bool("allow_remote", cfg.allow_remote)
    if not is_loopback(cfg.host) and not cfg.allow_remote:
        raise ConfigError(f"host={cfg.host}: the page would be reachable from other machines; add "
                          "allow_remote=true to mean it (or leave host at 127.0.0.1)")
    check_positive_int("max_file_mb", cfg.max_file_mb)
    check_choice("method", cfg.method, ATTRIBUTION_METHODS)
    check_face_options(cfg)
    check_backend(_get(cfg, "live_backend", "torch"), _get(cfg, "live_precision", "fp32"), _get(cfg, "tta", "none"),
                  prefix="live_")
    check_bool("open_browser", cfg.open_browser)


def check_pack_config(cfg: DictConfig) -> None:
    """Raise ConfigError for the first impossible value of ``python -m fer_lightning.pack``."""
    check_all_set(cfg)
    check_file_name("data.path", cfg.data.path)
    check_exists("data.path", cfg.data.path)
    if cfg.data.format not in FILE_FORMATS:
        _fail("data.format", cfg.data.format, allowed(FILE_FORMATS))
    if cfg.data.on_bad_rows not in ON_BAD_ROWS:
        _fail("data.on_bad_rows", cfg.data.on_bad_rows, allowed(ON_BAD_ROWS))
    if _get(cfg, "encoding") not in PACK_ENCODINGS:
        _fail("encoding", _get(cfg, "encoding"), allowed(PACK_ENCODINGS))
    check_file_name("output", _get(cfg, "output"), required=False)
    if cfg.output and not str(cfg.output).lower().endswith(".npz"):
        _fail("output", cfg.output, "a file name ending in .npz")
    check_bool("overwrite", cfg.overwrite)


def check_export_config(cfg: DictConfig) -> None:
    """Raise ConfigError for the first impossible value of ``python -m fer_lightning.export``."""
    check_all_set(cfg)
    check_file_name("ckpt_path", cfg.ckpt_path)
    check_choice("format", cfg.format, EXPORT_FORMATS)
    output = _get(cfg, "output")
    check_file_name("output", output, required=False)
    if output and not output.lower().endswith(EXPORT_SUFFIXES[cfg.format]):
        named_for = [fmt for fmt, suffixes in EXPORT_SUFFIXES.items() if output.lower().endswith(suffixes)]
        if named_for:
            raise ConfigError(f"output={output} is a name for format={named_for[0]}, not format={cfg.format}: "
                              f"name it *{EXPORT_SUFFIXES[cfg.format][0]} or pass format={named_for[0]}")
    if not isinstance(cfg.opset, int) or isinstance(cfg.opset, bool) or cfg.opset not in ONNX_OPSETS:
        _fail("opset", cfg.opset, f"a whole number in {ONNX_OPSETS[0]}..{ONNX_OPSETS[-1]} "
                                  "(the ONNX opsets the exporter writes)")
    check_bool("check", cfg.check)
    tolerance = cfg.check_tolerance
    if not _is_number(tolerance) or not math.isfinite(tolerance) or tolerance <= 0:
        _fail("check_tolerance", tolerance, "a number > 0")
    check_bool("overwrite", _get(cfg, "overwrite", False))


def check_threads(threads: Any) -> None:
    """``auto`` or a whole number of threads from 1 to this machine's cores x 4."""
    import os

    if threads in THREAD_POLICIES:
        return
    most = 4 * (os.cpu_count() or 1)
    if not isinstance(threads, int) or isinstance(threads, bool) or not 1 <= threads <= most:
        _fail("threads", threads, f"auto, or a whole number of threads from 1 to {most}")


def check_backend(backend: Any, precision: Any, tta: Any, prefix: str = "") -> None:
    """The inference backend and its weights' format: int8 exists only as an onnxruntime graph, and
    a graph holds no test-time augmentation but the flip. ``prefix`` names the keys (live_: the demo's stream)."""
    check_choice(f"{prefix}backend", backend, INFERENCE_BACKENDS)
    check_choice(f"{prefix}precision", precision, ONNX_PRECISIONS)
    if backend != "onnxruntime":
        if precision != "fp32":
            _fail(f"{prefix}precision", precision,
                  f"fp32 with {prefix}backend=torch (int8 is an onnxruntime graph: {prefix}backend=onnxruntime)")
        return
    if tta not in ("none", "flip"):
        _fail("tta", tta, f"none or flip with {prefix}backend=onnxruntime (ten_crop: {prefix}backend=torch)")
