"""python -m fer_lightning.evaluate ckpt_path=<checkpoint or ensemble> [data=...] [tta=none|flip] [output=eval.json]"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

import hydra
from omegaconf import DictConfig

from fer_lightning.commands.console import print_error
from fer_lightning.commands.entry import one_line, run_entry
from fer_lightning.errors import FerError
from fer_lightning.paths import config_dir
from fer_lightning.resolvers import register_resolvers

register_resolvers()

T = TypeVar("T")
PATH_KEYS = ("ckpt_path", "input", "output", "annotate_dir", "data.path", "data.test_path")


def quote_path_overrides(args: Sequence[str], keys: Sequence[str] = PATH_KEYS) -> list[str]:
    """Quote file-path values for Hydra's override grammar.

    Run and sweep directories are named after their overrides (``.../model.dropout=0.3,...``),
    and an unquoted ``=`` or ``,`` in a value is a syntax error to Hydra. Values already quoted,
    and ``null``, are left alone.
    """
    quoted = []
    for arg in args:
        key, sep, value = arg.partition("=")
        if sep and key.lstrip("+~") in keys and value and value[0] not in "'\"" and value != "null":
            arg = f"{key}='{value.replace(chr(39), chr(92) + chr(39))}'"
        quoted.append(arg)
    return quoted


def run_task(task: Callable[[DictConfig], T], cfg: DictConfig) -> T:
    """Run a command inside its Hydra job so that a user's mistake ends as one line, exit status 2.

    An exception escaping the job would make Hydra print an extra "Error executing job" line;
    SystemExit passes through Hydra untouched.
    """
    from omegaconf.errors import OmegaConfBaseException

    try:
        return task(cfg)
    except (FerError, OmegaConfBaseException) as error:
        print_error(one_line(str(error)))
        raise SystemExit(2) from None


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="evaluate")
def hydra_main(cfg: DictConfig) -> float:
    from fer_lightning.commands.evaluate import evaluate  # heavy imports after Hydra parsed the command line

    return run_task(evaluate, cfg)["accuracy"]


def main() -> None:
    sys.argv[1:] = quote_path_overrides(sys.argv[1:])
    run_entry(hydra_main)


if __name__ == "__main__":
    main()
