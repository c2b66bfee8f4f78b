"""Compose a config from Python exactly as the command line would, for code that runs a command's
work in-process (the summary command, tests, benchmarks) instead of through ``@hydra.main``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, open_dict

from fer_lightning.config.paths import config_dir
from fer_lightning.config.resolvers import register_resolvers


def compose_config(
    overrides: Sequence[str] = (), config_name: str = "train", with_hydra: bool = False
) -> DictConfig:
    """``conf/<config_name>.yaml`` with ``overrides``; ``with_hydra`` keeps the ``hydra`` node that
    ``bind_run`` needs. Any earlier in-process Hydra initialisation is cleared first."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=config_dir()):
        return compose(config_name=config_name, overrides=list(overrides), return_hydra_config=with_hydra)


def bind_run(cfg: DictConfig, output_dir: Path, job_id: str) -> DictConfig:
    """Make ``cfg`` (composed ``with_hydra``) look like Hydra is running it in ``output_dir``, as
    ``@hydra.main`` does: ``${hydra:...}`` interpolations and ``HydraConfig.get()`` then resolve."""
    from hydra.core.hydra_config import HydraConfig

    output_dir.mkdir(parents=True, exist_ok=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
        cfg.hydra.job.id = job_id
    HydraConfig.instance().set_config(cfg)
    return cfg
