"""python -m fer_lightning.report ckpt_path=PATH [key=value ...]: figures and tables of a finished run
(or ckpt_path=pretrained: the shipped model's) as an HTML page."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from fer_lightning.cli.entry import quote_path_overrides, run_command, run_task

__all__ = ["main", "quote_path_overrides", "report"]


def report(cfg: DictConfig) -> Path:
    """The command: write the report; errors a user can fix are one line and exit status 2."""
    from fer_lightning.reporting.run_report import build_report  # heavy imports after the command line is read

    page = run_task(build_report, cfg)
    print(f"report: {page}")
    return page


def main() -> None:
    run_command("report", report, __doc__, main_input="ckpt_path")


if __name__ == "__main__":
    main()
