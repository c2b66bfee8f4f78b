"""python -m fer_lightning.evaluate ckpt_path=<checkpoint or ensemble> [split=test|val] [data=...] [tta=none|flip|ten_crop] [output=eval.json]"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from fer_lightning.cli.entry import quote_path_overrides, run_entry, run_task
from fer_lightning.config.paths import config_dir
from fer_lightning.config.resolvers import register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="evaluate")
def hydra_main(cfg: DictConfig) -> float:
    from fer_lightning.inference.evaluation import evaluate  # heavy imports after Hydra parsed the command line

    return run_task(evaluate, cfg)["accuracy"]


def main() -> None:
    sys.argv[1:] = quote_path_overrides(sys.argv[1:])
    run_entry(hydra_main)


if __name__ == "__main__":
    main()
