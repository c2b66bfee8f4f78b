"""python -m fer_lightning.export ckpt_path=<checkpoint or ensemble> format=onnx|torchscript [output=<file>]"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from fer_lightning.cli.entry import quote_path_overrides, run_entry, run_task
from fer_lightning.config.paths import config_dir
from fer_lightning.config.resolvers import register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="export")
def hydra_main(cfg: DictConfig) -> None:
    from fer_lightning.inference.export import export  # heavy imports after Hydra parsed the command line

    run_task(export, cfg)


def main() -> None:
    sys.argv[1:] = quote_path_overrides(sys.argv[1:])
    run_entry(hydra_main)


if __name__ == "__main__":
    main()
