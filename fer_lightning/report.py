"""python -m fer_lightning.report run_dir=PATH [key=value ...]: figures and tables of a finished run."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from fer_lightning.commands.entry import quote_path_overrides, run_entry
from fer_lightning.paths import config_dir
from fer_lightning.resolvers import register_resolvers

register_resolvers()

@hydra.main(version_base="1.3", config_path=config_dir(), config_name="report")
def hydra_main(cfg: DictConfig) -> None:
    from fer_lightning.commands.report import report  # heavy imports after Hydra parsed the command line

    report(cfg)


def main() -> None:
    sys.argv[1:] = quote_path_overrides(sys.argv[1:])
    run_entry(hydra_main)


if __name__ == "__main__":
    main()
