"""Run a @hydra.main function so that a mistake on the command line is one line, not a page."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import argparse

from fer_lightning.cli.console import print_error
from fer_lightning.errors import FerError

if TYPE_CHECKING:
    from omegaconf import DictConfig

T = TypeVar("T")
# Keys whose values are file paths in the commands' configs.
PATH_KEYS = ("ckpt_path", "init_from", "input", "output", "annotate_dir", "data.path", "data.test_path",
             "run_dir", "output_dir", "checkpoint")


def quote_path_overrides(args: Sequence[str], keys: Sequence[str] = PATH_KEYS,
                         only_if: Callable[[str], bool] = lambda value: True) -> list[str]:
    """``run_dir=a/b=c,d`` -> ``run_dir='a/b=c,d'``, so paths can be typed (or pasted) as they are.

    Run and sweep directories are named after their overrides, and Hydra's override grammar reads
    ``=`` and ``,`` in a value as syntax. Values already quoted, and ``null``, are left alone.
    """
    quoted = []
    for arg in args:
        key, sep, value = arg.partition("=")
        if sep and key.lstrip("+~") in keys and value and value[0] not in "'\"" and value != "null" and only_if(value):
            arg = key + "='" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        quoted.append(arg)
    return quoted


def parse_options(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """argparse for the commands with --options (leaderboard, ensemble, curves, publish), which also take
    each option as key=value, as every other command does: ``top_k=3`` is ``--top-k 3``, ``greedy=true``
    is ``--greedy``. An argument whose key is no option (a path holding '=') is left as it is."""
    options = {action.dest: action for action in parser._actions if action.option_strings}
    translated: list[str] = []
    for arg in list(sys.argv[1:] if argv is None else argv):
        key, sep, value = arg.partition("=")
        action = options.get(key.replace("-", "_")) if sep and not arg.startswith("-") else None
        if action is None:
            translated.append(arg)
        elif action.nargs == 0:  # a switch
            if value.lower() not in ("true", "false"):
                parser.error(f"{arg}: {key} is true or false")
            translated += [action.option_strings[-1]] if value.lower() == "true" else []
        else:
            translated += [action.option_strings[-1], value]
    return parser.parse_args(translated)


def main_input_as_override(args: Sequence[str], key: str | None) -> list[str]:
    """``fer predict photo.jpg``: the one argument that is no ``key=value`` setting (no '=', or an
    existing path that holds one) is the command's main input, ``key=<it>``."""
    positional = [arg for arg in args if not arg.startswith(("-", "+", "~")) and ("=" not in arg or Path(arg).exists())]
    if not positional:
        return list(args)
    if key is None:
        raise FerError(f"{positional[0]}: this command takes key=value settings only (see --help)")
    if len(positional) > 1:
        raise FerError(f"{positional[1]}: one {key} at a time (already given: {positional[0]})")
    if any(arg.partition("=")[0] == key for arg in args if arg not in positional):
        raise FerError(f"{positional[0]}: {key} is given twice (as {key}= and on its own)")
    return [f"{key}={arg}" if arg in positional else arg for arg in args]


def user_error_line(error: BaseException) -> str | None:
    """The one line a user's mistake is shown as: this project's errors, Hydra's and OmegaConf's (a
    config that does not compose), a loss that stopped being a number, a file the system refused.
    None for anything else: a bug, whose traceback is worth reading."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(error, HydraException) and isinstance(error.__cause__, FerError):
        error = error.__cause__  # raised while Hydra built a configured object: ours says it better
    if isinstance(error, (FerError, HydraException, OmegaConfBaseException, FloatingPointError)):
        return one_line(str(error))
    if type(error).__module__.startswith("submitit"):
        lines = str(error).splitlines()
        if type(error).__name__ == "FailedJobError" and any("sbatch" in line for line in lines):
            # sbatch refused a sweep's jobs (resources the cluster lacks, an unknown partition); submitit
            # has printed sbatch's own line with the reason just before, so it is not said twice.
            return ("sbatch refused the sweep's jobs (its reason is the line above): hydra.launcher.<key>=... "
                    "sets their sbatch options (docs/cluster.md lists them)")
        if type(error).__name__ == "UncompletedJobError":  # cancelled, or killed at its time limit
            return (f"a job ended without a result: {' '.join(lines[:2])}; the same command again resumes "
                    "the unfinished jobs and skips the finished ones")
    if isinstance(error, OSError):  # typically an output folder, which Hydra makes before our code runs
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}{error.strerror or error}"
    return None


# True while a boundary runs: HYDRA_FULL_ERROR=1 is then the boundary's, not the user's.
_guarding = False


def command(main: Callable[..., T]) -> Callable[..., T]:
    """The error boundary of every command (``fer <command>`` and ``python -m fer_lightning.<command>``
    both enter through it): a user's mistake ends as one line on stderr and exit status 2.

    HYDRA_FULL_ERROR=1, set by the user, keeps the full report instead.
    """

    @functools.wraps(main)
    def guarded(*args: object, **kwargs: object) -> T:
        global _guarding
        if os.environ.get("HYDRA_FULL_ERROR") == "1" and not _guarding:
            return main(*args, **kwargs)
        outermost = not _guarding
        os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises its errors to us instead of printing them
        _guarding = True
        try:
            return main(*args, **kwargs)
        except Exception as error:
            line = user_error_line(error)
            if line is None:
                raise
            print_error(line)
            raise SystemExit(2) from None
        finally:
            if outermost:
                os.environ.pop("HYDRA_FULL_ERROR", None)
                _guarding = False

    return guarded


def one_line(message: str) -> str:
    """A multi-line error (Hydra's composition errors, say) as one line, without the search-path listing.

    Lines are joined, nothing inside a line is changed: paths such as ``../shared`` stay as they are.
    """
    lines = [line.strip() for line in message.split("Config search path:")[0].splitlines() if line.strip()]
    joined = lines[0] if lines else ""
    for line in lines[1:]:
        joined += (" " if joined.endswith((":", ".", ",", ";")) else ", ") + line
    return joined


def run_command(config_name: str, task: Callable[[DictConfig], T], usage: str, argv: Sequence[str] | None = None,
                main_input: str | None = None) -> T:
    """A command that writes no run directory (evaluate, predict, export, report): ``conf/<config_name>``
    composed once with the command line's overrides (Hydra's grammar and errors), then ``task(cfg)``.

    ``@hydra.main`` would compose the config twice (once only to tell a run from a sweep), a tenth of
    predict's answer time, and these commands have no sweep, log file or working directory to set up.
    ``--help`` prints ``usage`` and the settings; ``--cfg job`` prints the composed settings.
    ``main_input``: the key that an argument given on its own sets (``fer predict photo.jpg``).
    Called from a command's ``main``, inside its error boundary (``command``).
    """
    import logging

    args = list(sys.argv[1:] if argv is None else argv)
    show = None
    if args and args[0] in ("-h", "--help"):
        show, args = "help", args[1:]
    elif args[:2] == ["--cfg", "job"] or args[:1] == ["--cfg=job"]:
        show, args = "cfg", args[2:] if args[0] == "--cfg" else args[1:]
    options = [arg for arg in args if arg.startswith("-")]
    if options:
        raise FerError(f"{options[0]}: not an option of this command (it takes key=value settings, --help, --cfg job)")
    args = quote_path_overrides(main_input_as_override(args, main_input))
    # Every setting these commands read is in their config: adding or deleting a key (Hydra's + and ~)
    # would be ignored at best (+share=true), so it is refused.
    added = [arg for arg in args if arg.startswith(("+", "~"))]
    if added:
        key = added[0].lstrip("+~").partition("=")[0]
        raise FerError(f"{added[0]}: this command has no setting {key!r} to add or remove; it takes key=value "
                       "for the settings --help lists")
    from omegaconf import OmegaConf, open_dict

    from fer_lightning.config.compose import bind_run, compose_config

    # As @hydra.main with hydra.run.dir=".": ${hydra:...} resolves, the working directory is the output.
    cfg = bind_run(compose_config(args, config_name, with_hydra=True), Path.cwd(), job_id=config_name)
    with open_dict(cfg):
        del cfg["hydra"]
    if show == "help":
        from fer_lightning.config.describe import settings_help
        from fer_lightning.config.paths import config_dir

        described = settings_help(Path(config_dir()) / f"{config_name}.yaml", cfg)
        print(f"{usage.strip()}\n\nSettings (key=value to change; the default shown):\n{described}")
        return None
    if show == "cfg":
        print(OmegaConf.to_yaml(cfg), end="")
        return None
    # What the library logs is what the user reads: plain lines on stderr, warnings and up always.
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr, force=True)
    return task(cfg)
