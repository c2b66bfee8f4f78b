"""python -m fer_lightning.report ckpt_path=PATH [key=value ...]: figures and tables of a finished run
(or ckpt_path=pretrained: the shipped model's) as an HTML page."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from fer_lightning.cli.entry import command, quote_path_overrides, run_command

__all__ = ["main", "quote_path_overrides", "report"]


def report(cfg: DictConfig) -> Path:
    """The command: write the report and say where it is."""
    from fer_lightning.reporting.run_report import build_report  # heavy imports after the command line is read

    page = build_report(cfg)
    print(f"report: {page}")
    return page


@command
def main() -> None:
    run_command("report", report, __doc__, main_input="ckpt_path")


if __name__ == "__main__":
    main()
