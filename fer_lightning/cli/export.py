"""python -m fer_lightning.export ckpt_path=<checkpoint or pretrained> format=onnx|torchscript [output=...]:
a model file that runs without this project."""

from __future__ import annotations

from omegaconf import DictConfig

from fer_lightning.cli.entry import command, run_command


def export(cfg: DictConfig) -> None:
    from fer_lightning.inference.export import export  # heavy imports after the command line is read

    export(cfg)


@command
def main() -> None:
    run_command("export", export, __doc__, main_input="ckpt_path")


if __name__ == "__main__":
    main()
