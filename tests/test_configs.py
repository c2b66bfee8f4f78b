"""Every option of every config group composes, passes the checks and builds what it declares."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hydra.utils import instantiate

from fer_lightning.config.checks import check_train_config
from fer_lightning.config.paths import config_dir
from fer_lightning.errors import ConfigError
from tests.conftest import compose_config

CONF = Path(config_dir())
# Groups whose options build something we can construct on any machine.
SKIP_GROUPS = {"hydra", "hparams_search"}


def group_options() -> list[tuple[str, str]]:
    pairs = []
    for folder in sorted(p for p in CONF.rglob("*") if p.is_dir()):
        group = folder.relative_to(CONF).as_posix()
        if group.split("/")[0] in SKIP_GROUPS:
            continue
        pairs += [(group, f.stem) for f in sorted(folder.glob("*.yaml"))]
    return pairs


def test_every_group_has_options():
    groups = {g for g, _ in group_options()}
    for expected in ("data", "model", "model/width", "model/dropout_schedule", "model/optimizer",
                     "model/scheduler", "augmentation", "trainer", "callbacks", "logger", "paths", "experiment"):
        assert expected in groups


@pytest.mark.parametrize(("group", "option"), group_options())
def test_option_composes_and_builds(group, option, tmp_path):
    overrides = [f"{group}={option}", f"paths.log_dir={tmp_path}"]
    if group == "data" and option in ("homework", "folder", "fer2013"):
        overrides.append(f"data.path={tmp_path}")  # only composing: any existing path will do
    cfg = compose_config(overrides)
    if cfg.data.format != "synthetic":
        cfg.data.path = str(tmp_path)  # experiments name FER2013, which a checkout need not have
    check_train_config(cfg)
    # Building a network takes a second; do it where the option can change it.
    if group.startswith("model") or group == "experiment":
        model = instantiate(cfg.model)
        assert model.net(__import__("torch").rand(2, 1, 48, 48)).shape == (2, 7)
    if group in ("data", "experiment"):
        datamodule = instantiate(cfg.data)
        assert datamodule.batch_size == cfg.data.batch_size
    assert cfg.trainer._target_ == "pytorch_lightning.Trainer"
    if group == "augmentation":
        from fer_lightning.data.augmentation import build_transform

        transform = build_transform(cfg.data.augmentation.train)
        if option == "none":
            assert transform is None
        else:
            import numpy as np

            out = transform(image=np.full((48, 48), 128, np.uint8))["image"]
            assert out.shape == (48, 48) and out.dtype == np.uint8


def test_width_and_dropout_variants_differ():
    report = compose_config(["model/width=report"]).model
    narrow = compose_config(["model/width=narrow"]).model
    wide = compose_config(["model/width=wide"]).model
    assert sum(narrow.net.channels) < sum(report.net.channels) < sum(wide.net.channels)
    none = compose_config(["model/dropout_schedule=none"]).model
    heavy = compose_config(["model/dropout_schedule=heavy"]).model
    assert none.dropout == 0.0 and heavy.dropout > report.dropout


def test_scalar_dropout_override_reaches_the_network():
    cfg = compose_config(["model.dropout=0.35"])
    net = instantiate(cfg.model).net
    rates = [m.p for m in net.modules() if type(m).__name__ == "Dropout"]
    assert max(rates) == pytest.approx(0.35)
    assert rates[0] == pytest.approx(0.05)  # the report's 0.1 after block 2, halved


def test_optimizer_is_partial_until_training(tmp_path):
    cfg = compose_config(["model/optimizer=sgd"])
    model = instantiate(cfg.model)
    assert model.hparams.optimizer["_target_"] == "torch.optim.SGD"
    assert isinstance(model.hparams.optimizer, dict)  # plain, so checkpoints stay weights-only loadable


@pytest.mark.parametrize(("precision", "epochs"), [("32-true", 11), ("bf16-mixed", 22)])
def test_cpu_hour_schedules_the_epochs_that_fit_the_hour_at_the_cpus_precision(precision, epochs, monkeypatch,
                                                                               tmp_path):
    from fer_lightning.config import resolvers

    monkeypatch.setattr(resolvers, "cpu_precision", lambda: precision)
    cfg = compose_config(["experiment=cpu_hour", f"paths.log_dir={tmp_path}"], output_dir=tmp_path)
    assert cfg.trainer.max_epochs == epochs and cfg.trainer.max_time == "00:01:00:00"
    # The narrow network's hour: about three times the epochs and random crops, the rest of the recipe unchanged.
    narrow = compose_config(["experiment=cpu_hour_narrow", f"paths.log_dir={tmp_path}"], output_dir=tmp_path)
    assert narrow.trainer.max_epochs == {"32-true": 30, "bf16-mixed": 65}[precision]
    assert list(narrow.model.net.channels) == [8, 16, 32, 64, 128, 256, 256] and narrow.name == "cpu_hour_narrow"
    assert narrow.model.optimizer == cfg.model.optimizer and narrow.model.scheduler == cfg.model.scheduler
    crop = compose_config(["augmentation=crop", f"paths.log_dir={tmp_path}"], output_dir=tmp_path)
    assert narrow.data.augmentation == crop.data.augmentation != cfg.data.augmentation


def test_a_data_path_the_chosen_data_does_not_read_is_an_error(tmp_path):
    packed = tmp_path / "fer2013.npz"
    packed.write_bytes(b"")
    cfg = compose_config([f"data.path={packed}", f"paths.log_dir={tmp_path}"])  # data=synthetic, the default
    with pytest.raises(ConfigError, match="data.path=.*: the synthetic faces .* read no file; .*data=fer2013"):
        check_train_config(cfg)


@pytest.mark.parametrize(("override", "words"), [
    ("data.batch_size=99999999999999999999", "data.batch_size=99999999999999999999 is not allowed: a whole number from 1 to 65,536"),
    ("model.optimizer.lr=nan", "model.optimizer.lr=nan is not allowed: a number > 0"),
    ("model.optimizer.weight_decay=inf", "model.optimizer.weight_decay=inf is not allowed"),
    ("model.net.channels=[100000,16,32,64,128,256,256]", "model.net.channels[0]=100000 is not allowed: a whole number from 1 to 4,096"),
    ("model.net.hidden=[1000000,64]", "model.net.hidden[0]=1000000 is not allowed"),
    ("callbacks.filter_pictures.steps=-1", "callbacks.filter_pictures.steps=-1 is not allowed: a whole number >= 1"),
    ("callbacks.filter_pictures.lr=nan", "callbacks.filter_pictures.lr=nan is not allowed: a number > 0"),
])
def test_sizes_and_numbers_that_cannot_work_are_refused_before_anything_is_allocated(override, words, tmp_path):
    from fer_lightning.runs.training import instantiate_named

    cfg = compose_config([override, f"paths.log_dir={tmp_path}"])
    with pytest.raises(ConfigError, match=re.escape(words)):
        check_train_config(cfg)
        instantiate_named(cfg.callbacks)  # the figure callbacks check their own settings when built


def test_summary_refuses_a_network_too_wide_to_build():
    from tests.helpers import run_cli

    result = run_cli("fer_lightning.summary", "model.net.channels=[100000,100000,100000,100000,100000,100000,100000]",
                     timeout=120)
    assert result.returncode == 2 and result.stderr.strip() == (
        "error: model.net.channels[0]=100000 is not allowed: a whole number from 1 to 4,096")
