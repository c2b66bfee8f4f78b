"""python -m fer_lightning.report run_dir=PATH [key=value ...]: figures and tables of a finished run."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from fer_lightning.commands.entry import run_entry
from fer_lightning.paths import config_dir
from fer_lightning.resolvers import register_resolvers

register_resolvers()

# Keys whose values are paths. Run directories are named after overrides ("lr=0.01,width=narrow"),
# and Hydra's override grammar reads "=" and "," in a value as syntax unless the value is quoted.
PATH_KEYS = ("run_dir", "output_dir", "checkpoint")


def quote_path_overrides(args: list[str]) -> list[str]:
    """``run_dir=a/b=c,d`` -> ``run_dir='a/b=c,d'``, so paths can be typed (or pasted) as they are."""
    quoted = []
    for arg in args:
        key, sep, value = arg.partition("=")
        if sep and key in PATH_KEYS and value and value[0] not in "'\"":
            value = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        quoted.append(f"{key}{sep}{value}" if sep else arg)
    return quoted


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="report")
def hydra_main(cfg: DictConfig) -> None:
    from fer_lightning.commands.report import report  # heavy imports after Hydra parsed the command line

    report(cfg)


def main() -> None:
    sys.argv[1:] = quote_path_overrides(sys.argv[1:])
    run_entry(hydra_main)


if __name__ == "__main__":
    main()
