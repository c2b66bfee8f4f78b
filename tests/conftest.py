"""Shared fixtures: configs composed in-process, small and fast by default."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from fer_lightning.paths import config_dir
from fer_lightning.resolvers import register_resolvers

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
register_resolvers()
torch.set_num_threads(min(2, os.cpu_count() or 1))

# Small data and a narrow net: a training test takes seconds, not minutes.
FAST = [
    "data.synthetic.train=448",
    "data.synthetic.val=192",
    "data.synthetic.test=128",
    "model/width=narrow",
    "trainer.max_epochs=1",
    "callbacks.progress_bar=null",
    "callbacks.saliency=null",
    "callbacks.filter_pictures=null",
    "print_config=false",
]


def compose_config(
    overrides: list[str] | None = None, config_name: str = "train", output_dir: Path | None = None
) -> DictConfig:
    """Compose like the command line would; bound to `output_dir` (a fresh temp dir if None)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=config_dir()):
        cfg = compose(config_name=config_name, overrides=overrides or [], return_hydra_config=True)
    return bind_run(cfg, output_dir or Path(tempfile.mkdtemp(prefix="fer-test-")))


def bind_run(cfg: DictConfig, output_dir: Path) -> DictConfig:
    """Make `cfg` look like Hydra is running it in `output_dir` (what @hydra.main does)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
        cfg.hydra.job.id = "test"
    HydraConfig.instance().set_config(cfg)
    return cfg


@pytest.fixture
def train_config(tmp_path):
    """Factory: a composed, bound training config writing under tmp_path."""

    def make(*overrides: str, run: str = "run") -> DictConfig:
        return compose_config([*FAST, f"paths.log_dir={tmp_path}", *overrides], output_dir=tmp_path / run)

    yield make
    GlobalHydra.instance().clear()
