"""fer <command> [main input] [key=value ...]: every command of the project under one installed name.

``fer train experiment=cpu_hour``, ``fer predict photo.jpg``, ``fer evaluate pretrained data=fer2013``,
``fer ensemble outputs/multiruns/<name>/<sweep>``. ``python -m fer_lightning.<command>`` runs the same code.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from fer_lightning.cli.entry import command
from fer_lightning.errors import FerError

# name -> (the module whose main() runs it, what it does). The order is the order of `fer --help`.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("fer_lightning.cli.train", "train a network, or a sweep of them with -m (Hydra overrides)"),
    "predict": ("fer_lightning.cli.predict", "the expression of every face in a photo, folder, video or CSV"),
    "evaluate": ("fer_lightning.cli.evaluate", "accuracy, per-class table and confusion matrix of a model"),
    "demo": ("fer_lightning.cli.demo", "the local web page: a photo in, its faces labelled"),
    "leaderboard": ("fer_lightning.cli.leaderboard", "every run of a sweep, best first"),
    "ensemble": ("fer_lightning.cli.ensemble", "average the best runs of a sweep into one ensemble file"),
    "report": ("fer_lightning.cli.report", "a finished run's figures and tables as an HTML page"),
    "summary": ("fer_lightning.cli.summary", "the network as a table of layers"),
    "export": ("fer_lightning.cli.export", "a model file that runs without this project (ONNX, TorchScript)"),
    "publish": ("fer_lightning.cli.publish", "ship a finished run's best checkpoint as a model of the package"),
    "pack": ("fer_lightning.cli.pack", "a data set as one compressed .npz of faces, labels and splits"),
    "curves": ("fer_lightning.cli.curves", "validation accuracy against wall-clock minutes for several runs"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [__doc__.split("\n\n")[0], "", "commands:"]
    lines += [f"  {name:<{width}}  {what}" for name, (_, what) in COMMANDS.items()]
    lines += ["", "fer <command> --help: the command's settings, each with what it does."]
    return "\n".join(lines)


@command
def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        raise FerError(f"{name}: not a command of fer (commands: {', '.join(COMMANDS)}; fer --help)")
    module = importlib.import_module(COMMANDS[name][0])
    # Each command reads its own command line, as `python -m fer_lightning.<command>` gives it.
    sys.argv = [f"fer {name}", *rest]
    module.main()


if __name__ == "__main__":
    main()
