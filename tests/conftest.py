"""Shared fixtures: configs composed in-process, small and fast by default."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from fer_lightning.config.compose import bind_run
from fer_lightning.config.compose import compose_config as compose_config_in_process
from fer_lightning.config.resolvers import register_resolvers

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
# Whatever a test's command writes by default (caches, results of shipped models) goes to a folder of
# the test session's, never into the checkout; commands started by tests inherit it.
os.environ["FER_OUTPUTS"] = tempfile.mkdtemp(prefix="fer-test-outputs-")
os.environ["FER_CACHE"] = os.path.join(os.environ["FER_OUTPUTS"], "cache")  # exported ONNX graphs
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
    cfg = compose_config_in_process(overrides or [], config_name, with_hydra=True)
    return bind_run(cfg, output_dir or Path(tempfile.mkdtemp(prefix="fer-test-")), job_id="test")


@pytest.fixture
def train_config(tmp_path):
    """Factory: a composed, bound training config writing under tmp_path."""

    def make(*overrides: str, run: str = "run") -> DictConfig:
        return compose_config([*FAST, f"paths.log_dir={tmp_path}", *overrides], output_dir=tmp_path / run)

    yield make
    GlobalHydra.instance().clear()


@pytest.fixture(scope="module")
def one_thread():
    """For modules of many tiny tensor ops: a second intra-op thread only adds waiting on shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
