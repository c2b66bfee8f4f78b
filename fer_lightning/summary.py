"""python -m fer_lightning.summary [model overrides]: the network as a table of layers.

Output shapes come from the conv/pool arithmetic (fer_lightning.analysis.conv_arithmetic),
not from running the model. Example: python -m fer_lightning.summary model/width=wide
"""

from __future__ import annotations

import sys

from fer_lightning.commands.entry import run_entry
from fer_lightning.config_compose import compose_config


def summary(overrides: list[str]) -> str:
    from fer_lightning.analysis.model_summary import format_summary, summarize
    from fer_lightning.config_checks import check_model
    from fer_lightning.model.cnn import ReportCNN
    from fer_lightning.model.module import NET_KEYS

    cfg = compose_config(overrides)
    check_model(cfg.model)
    net = ReportCNN(**{key: cfg.model[key] for key in NET_KEYS})
    return format_summary(summarize(net))


def main() -> None:
    run_entry(lambda: print(summary(sys.argv[1:])))


if __name__ == "__main__":
    main()
