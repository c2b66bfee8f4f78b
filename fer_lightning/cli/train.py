"""python -m fer_lightning.train [-m] [group=option ...] [key=value ...]"""

from __future__ import annotations

import logging
import math
import re
import sys
import textwrap
from pathlib import Path

import hydra
from omegaconf import DictConfig

from fer_lightning.cli.console import print_error
from fer_lightning.cli.entry import command, quote_path_overrides, user_error_line
from fer_lightning.config.checks import check_run_name
from fer_lightning.config.paths import config_dir
from fer_lightning.config.resolvers import register_resolvers
from fer_lightning.errors import FerError

register_resolvers()
log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
def hydra_main(cfg: DictConfig) -> float | None:
    return train_command(cfg)


def train_command(cfg: DictConfig) -> float | None:
    """Train one run (a job of a sweep, or alone). A user's mistake is one line (``user_error_line``);
    alone it ends the command with exit status 2, in a sweep the other jobs go on.

    It is handled here, inside the Hydra job, because an exception escaping the job makes Hydra
    print its own "Error executing job" report first; SystemExit passes through untouched.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from fer_lightning.runs.training import train  # heavy imports after Hydra parsed the command line
    from fer_lightning.sweeps.failures import failed_job_raises

    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return command(train)(cfg)
    try:
        return train(cfg)
    except Exception as error:
        line = user_error_line(error)
        if line is None:
            log.exception("run failed; the sweep continues")
        else:
            print_error(line)
        if failed_job_raises(hydra_cfg):
            raise  # the optuna sweeper records the trial as failed and goes on
        return math.nan  # the sweep goes on; the leaderboard lists this run as failed


def train_help() -> str:
    """``--help``: the command, its own settings and every config group's options, from the config
    files' comments (Hydra's own page: --hydra-help)."""
    from hydra.core.hydra_config import HydraConfig

    from fer_lightning.config.compose import compose_config
    from fer_lightning.config.describe import groups_help, key_comments

    conf = Path(config_dir())
    described = key_comments((conf / "train.yaml").read_text())
    cfg = compose_config([], "train", with_hydra=True)
    chosen = {group: str(option) for group, option in cfg.hydra.runtime.choices.items()}
    HydraConfig.instance().cfg = None
    own = []
    for key in re.findall(r"^([a-z_]+):", (conf / "train.yaml").read_text(), flags=re.MULTILINE):
        if key in cfg and key not in ("defaults", "hydra"):
            value = cfg[key]
            own.append(f"  {key}={'null' if value is None else str(value).lower() if isinstance(value, bool) else value}")
            if key in described:
                own.append(textwrap.fill(described[key], 100, initial_indent="      ", subsequent_indent="      "))
    return "\n".join([
        "fer train [-m] [group=option ...] [key=value ...]   (also: python -m fer_lightning.train)",
        "Train the report's CNN (or another network) on the chosen data; -m runs a sweep, one run per",
        "combination (fer train -m model.dropout=0.3,0.5). Runs write outputs/runs/<name>/<overrides>/.",
        "", "Settings of the command:", *own,
        "", "Config groups (group=option; * the default):", groups_help(conf, chosen),
        "", "Every setting of a run, with the values it would use: fer train [overrides] --cfg job",
    ])


@command
def main() -> None:
    if sys.argv[1:2] in (["--help"], ["-h"]):
        print(train_help())
        return
    # A checkpoint's path may hold '=' and ',' (run directories are named after overrides); any path
    # may hold spaces, which Hydra's grammar reads only inside quotes.
    sys.argv[1:] = quote_path_overrides(sys.argv[1:], keys=("ckpt_path", "init_from", "model.distill.teacher"))
    sys.argv[1:] = quote_path_overrides(sys.argv[1:], keys=("paths.log_dir", "data.path", "data.test_path",
                                                            "data.cache_dir"),
                                        only_if=lambda value: any(c.isspace() for c in value))
    # The run directory is made before any check of ours runs: a name that leaves outputs/runs/ stops here.
    for arg in sys.argv[1:]:
        key, sep, value = arg.partition("=")
        added = key.lstrip("+")
        if sep and key.startswith("+") and "." not in added and not (Path(config_dir()) / added).is_dir():
            # Nothing reads a new top-level key (+bogus=1); new keys inside a node (+trainer.max_steps=10)
            # reach the code that node configures, which refuses what it does not know.
            raise FerError(f"{arg}: train has no setting {added!r} (fer train --help lists them)")
        if sep and key.lstrip("+~") == "name":
            check_run_name(value.strip("'\""))
    hydra_main()
    from fer_lightning.sweeps.summary import failed_jobs

    if failed_jobs:  # a -m sweep ran and some of its jobs failed (the summary line said which)
        sys.exit(1)


if __name__ == "__main__":
    main()
