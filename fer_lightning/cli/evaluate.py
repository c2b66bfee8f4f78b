"""python -m fer_lightning.evaluate ckpt_path=<checkpoint, ensemble or pretrained> [key=value ...]:
accuracy, per-class table and confusion matrix on a split."""

from __future__ import annotations

from omegaconf import DictConfig

from fer_lightning.cli.entry import command, run_command


def evaluate(cfg: DictConfig) -> float:
    from fer_lightning.inference.evaluation import evaluate  # heavy imports after the command line is read

    return evaluate(cfg)["accuracy"]


@command
def main() -> None:
    run_command("evaluate", evaluate, __doc__, main_input="ckpt_path")


if __name__ == "__main__":
    main()
