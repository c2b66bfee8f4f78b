"""python -m fer_lightning.report run_dir=PATH [key=value ...]: figures and tables of a finished run."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from fer_lightning.cli.entry import quote_path_overrides, run_entry, run_task
from fer_lightning.config.paths import config_dir
from fer_lightning.config.resolvers import register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="report")
def hydra_main(cfg: DictConfig) -> None:
    report(cfg)


def report(cfg: DictConfig) -> Path:
    """The command: write the report; errors a user can fix are one line and exit status 2."""
    from fer_lightning.viz.run_report import build_report  # heavy imports after Hydra parsed the command line

    page = run_task(build_report, cfg)
    print(f"report: {page}")
    return page


def main() -> None:
    sys.argv[1:] = quote_path_overrides(sys.argv[1:])
    run_entry(hydra_main)


if __name__ == "__main__":
    main()
