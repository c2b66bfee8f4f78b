"""python -m fer_lightning.evaluate ckpt_path=<checkpoint, ensemble or pretrained> [key=value ...]:
accuracy, per-class table and confusion matrix on a split."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from fer_lightning.cli.entry import command, run_command


def evaluate(cfg: DictConfig) -> float:
    from fer_lightning.inference.evaluation import evaluate  # heavy imports after the command line is read

    result = evaluate(cfg)
    if "calibration" in result:
        print(f"reliability diagram: {write_reliability(result)}")
    return result["accuracy"]


def write_reliability(result: dict) -> Path:
    """``<result>_reliability.png`` beside the evaluate result: confidence against accuracy, before and
    after the fitted temperature."""
    from fer_lightning.files import write_bytes
    from fer_lightning.viz.figures import figure_to_png, reliability_figure

    fit = result["calibration"]
    target = Path(fit["reliability_diagram"])
    figure = reliability_figure(fit["reliability_before"], fit["reliability_after"], fit["fitted_temperature"],
                                fit["ece_before"], fit["ece_after"])
    write_bytes(target, figure_to_png(figure))
    return target


@command
def main() -> None:
    run_command("evaluate", evaluate, __doc__, main_input="ckpt_path")


if __name__ == "__main__":
    main()
