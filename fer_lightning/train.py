"""python -m fer_lightning.train [-m] [group=option ...] [key=value ...]"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from fer_lightning.commands.entry import run_entry
from fer_lightning.paths import config_dir
from fer_lightning.resolvers import register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
def hydra_main(cfg: DictConfig) -> float | None:
    from fer_lightning.commands.train import train  # heavy imports after Hydra parsed the command line

    return train(cfg)


def main() -> None:
    run_entry(hydra_main)


if __name__ == "__main__":
    main()
