"""python -m fer_lightning.predict input=<photo, folder, video or test CSV> [ckpt_path=...] [output=...]:
the expression of every face, with the shipped model unless ckpt_path says otherwise."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from fer_lightning.cli.entry import command, run_command


def predict(cfg: DictConfig) -> None:
    from fer_lightning.inference.prediction import predict  # heavy imports after the command line is read
    from fer_lightning.inference.video import is_video

    output = predict(cfg)
    if is_video(Path(cfg.input)):
        print(f"timeline: {write_timeline(output)}")


def write_timeline(table: Path) -> Path:
    """``<table>_timeline.png``: the probabilities of the video's largest face over time."""
    from fer_lightning.files import write_bytes
    from fer_lightning.viz.figures import expression_timeline_figure, figure_to_png, video_timeline

    times, probabilities, names = video_timeline(table)
    target = table.with_name(f"{table.stem}_timeline.png")
    write_bytes(target, figure_to_png(expression_timeline_figure(times, probabilities, names, title=table.stem)))
    return target


@command
def main() -> None:
    run_command("predict", predict, __doc__, main_input="input")


if __name__ == "__main__":
    main()
