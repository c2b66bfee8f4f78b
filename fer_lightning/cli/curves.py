"""python -m fer_lightning.curves RUN_DIR[=LABEL] ... --output FILE.png [--budget 60] [--target 0.66]
[--epoch-time recorded|median]

Validation accuracy against wall-clock minutes for several runs, on one plot, from the runs' own
train.log epoch lines (each epoch's training and validation time, summed; start-up is not counted).
With --epoch-time median every epoch of a run counts as its median epoch: the run at its own idle
pace, when some of its epochs shared the machine with other work.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

from fer_lightning.cli.entry import command, parse_options


def positive_minutes(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text}: a number of minutes > 0")
    return value


def accuracy_level(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text}: an accuracy from 0 to 1")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m fer_lightning.curves", description=__doc__.split("\n\n")[1])
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR[=LABEL]",
                        help="run directories, each optionally with the label its line gets")
    parser.add_argument("--output", type=Path, required=True, help="the PNG to write")
    parser.add_argument("--metric", default="acc/val", help="the epoch line's value to plot (default acc/val)")
    parser.add_argument("--budget", type=positive_minutes, default=60.0, help="a vertical guide at this many minutes")
    parser.add_argument("--target", type=accuracy_level, default=None, help="a horizontal guide at this accuracy")
    parser.add_argument("--title", default="", help="the plot's title")
    parser.add_argument("--epoch-time", choices=("recorded", "median"), default="recorded",
                        help="each epoch's own recorded time, or the run's median epoch time for every epoch")
    return parse_options(parser, argv)


def split_label(item: str) -> tuple[str, str]:
    """``RUN_DIR=LABEL`` -> (RUN_DIR, LABEL); run directories hold '=' themselves, so the longest
    prefix that is a folder is the run."""
    cuts = [index for index, char in enumerate(item) if char == "="]
    for cut in [len(item), *reversed(cuts)]:
        if Path(item[:cut]).is_dir():
            return item[:cut], item[cut + 1:]
    return item, ""


def curves(args: argparse.Namespace) -> Path:
    from fer_lightning.errors import ConfigError
    from fer_lightning.files import atomic_write
    from fer_lightning.runs.saved_run import read_epoch_log
    from fer_lightning.viz.figures import accuracy_over_time_figure, figure_to_png

    if args.output.suffix.lower() != ".png":
        raise ConfigError(f"--output {args.output}: the plot is written as a .png file")
    lines = {}
    for item in args.runs:
        path, label = split_label(item)
        epochs = read_epoch_log(path)
        median = statistics.median(record.seconds for record in epochs) if epochs else 0.0
        elapsed, points = 0.0, []
        for record in epochs:
            elapsed += (median if args.epoch_time == "median" else record.seconds) / 60
            if args.metric in record.values:
                points.append((elapsed, record.values[args.metric]))
        if not points:
            raise ConfigError(f"{path}: no epoch line with {args.metric} in its train.log")
        lines[label or Path(path).name] = points
    figure = accuracy_over_time_figure(lines, args.budget, args.target, args.title,
                                       median_epochs=args.epoch_time == "median")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.output) as handle:
        handle.write(figure_to_png(figure))
    for label, points in lines.items():
        within = [value for minutes, value in points if minutes <= args.budget]
        best = f"{max(within):.2%} within {args.budget:g} min" if within else f"no epoch within {args.budget:g} min"
        print(f"{label}: {len(points)} epochs, {points[-1][0]:.1f} min, best {max(v for _, v in points):.2%}; {best}")
    return args.output


@command
def main(argv: list[str] | None = None) -> None:
    output = curves(parse_args(argv))
    print(f"plot: {output}", file=sys.stderr)


if __name__ == "__main__":
    main()
