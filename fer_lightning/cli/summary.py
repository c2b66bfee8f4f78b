"""python -m fer_lightning.summary [model overrides]: the network as a table of layers.

Output shapes come from the conv/pool arithmetic (fer_lightning.theory.conv_arithmetic),
not from running the model. Example: python -m fer_lightning.summary model/width=wide
"""

from __future__ import annotations

import sys

from fer_lightning.cli.entry import command
from fer_lightning.config.compose import compose_config


def summary(overrides: list[str]) -> str:
    from fer_lightning.viz.model_table import model_config_table

    return model_config_table(compose_config(overrides).model)


@command
def main() -> None:
    print(summary(sys.argv[1:]))


if __name__ == "__main__":
    main()
