"""python -m fer_lightning.predict input=<photo, folder or test CSV> [ckpt_path=...] [output=...]:
the expression of every face, with the shipped model unless ckpt_path says otherwise."""

from __future__ import annotations

from omegaconf import DictConfig

from fer_lightning.cli.entry import run_command


def predict(cfg: DictConfig) -> None:
    from fer_lightning.inference.prediction import predict  # heavy imports after the command line is read

    predict(cfg)


def main() -> None:
    run_command("predict", predict, __doc__)


if __name__ == "__main__":
    main()
