"""python -m fer_lightning.ensemble [SWEEP_DIR] [--top-k K] [--greedy] [--output FILE [--overwrite]]

Average the best runs of a sweep (chosen by validation accuracy, never test accuracy) into one
ensemble file, SWEEP_DIR/ensemble.ckpt (with --greedy: SWEEP_DIR/ensemble-greedy.ckpt), and report
each member's and the ensemble's accuracy in a .json of the same name beside it. Without SWEEP_DIR:
the latest sweep under outputs/multiruns.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from fer_lightning.cli.entry import command, parse_options
from fer_lightning.config.paths import outputs_dir
from fer_lightning.config.resolvers import register_resolvers
from fer_lightning.terminal import console

register_resolvers()


class PlainFormatter(logging.Formatter):
    """Progress as bare lines; warnings and errors say what they are."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {text}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m fer_lightning.ensemble", description=__doc__.split("\n\n")[1])
    parser.add_argument("sweep_dir", nargs="?", type=Path, metavar="SWEEP_DIR",
                        help="a multirun directory (default: the latest under outputs/multiruns)")
    parser.add_argument("--top-k", type=int, default=5, metavar="K",
                        help="members: the K best runs by validation accuracy (with --greedy: at most K; default 5)")
    parser.add_argument("--greedy", action="store_true",
                        help="add the next-best run only while the ensemble's validation accuracy improves")
    parser.add_argument("--batch-size", type=int, default=256, help="images per forward pass (default 256)")
    parser.add_argument("--device", default="auto",
                        help="where the members compute: auto (the GPU when there is one), cpu, cuda or cuda:N")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --output (or its .json) that is not an ensemble file or summary")
    parser.add_argument("--output", type=Path, metavar="FILE",
                        help="the ensemble file; its summary goes to FILE with a .json suffix (default "
                             "SWEEP_DIR/ensemble.ckpt, with --greedy SWEEP_DIR/ensemble-greedy.ckpt)")
    return parse_options(parser, argv)


@command
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(PlainFormatter("%(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])

    from fer_lightning.sweeps.ensemble import build_ensemble, render_table
    from fer_lightning.sweeps.leaderboard import latest_sweep

    sweep_dir = args.sweep_dir or latest_sweep(Path(outputs_dir()) / "multiruns")
    document = build_ensemble(sweep_dir, top_k=args.top_k, greedy=args.greedy,
                        batch_size=args.batch_size, output=args.output, device=args.device,
                        overwrite=args.overwrite)
    console().print(render_table(document))
    # Plain lines, not a table caption: rich would wrap a long path inside the table's width.
    print(f"ensemble file: {document['artifact']}")
    print(f"summary: {document['summary']}")


if __name__ == "__main__":
    main()
