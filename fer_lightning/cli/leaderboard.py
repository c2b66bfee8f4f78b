"""python -m fer_lightning.leaderboard [SWEEP_DIR] [--json FILE [--overwrite]]

Every run of a sweep (a Hydra multirun directory), best validation accuracy first; failed and
unfinished runs are listed too. Without SWEEP_DIR: the latest sweep under outputs/multiruns.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fer_lightning.cli.entry import command, parse_options
from fer_lightning.config.paths import outputs_dir


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m fer_lightning.leaderboard", description=__doc__.split("\n\n")[1])
    parser.add_argument("sweep_dir", nargs="?", type=Path, metavar="SWEEP_DIR",
                        help="a multirun directory (default: the latest under outputs/multiruns)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the table as JSON")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --json file that is not a leaderboard")
    parser.add_argument("--tags", nargs="+", metavar="TAG", type=lambda text: text.strip("[]").split(","),
                        help="only the runs with every one of these tags (tags=baseline, tags=[a,b])")
    return parse_options(parser, argv)


@command
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from fer_lightning.sweeps.leaderboard import latest_sweep, leaderboard

    sweep_dir = args.sweep_dir or latest_sweep(Path(outputs_dir()) / "multiruns")
    tags = [tag.strip() for group in args.tags or [] for tag in group if tag.strip()]
    leaderboard(sweep_dir, json_path=args.json, overwrite=args.overwrite, tags=tags or None)


if __name__ == "__main__":
    main()
