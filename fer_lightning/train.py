"""`python -m fer_lightning.train`: the command lives in fer_lightning.cli.train."""

from fer_lightning.cli.train import main

if __name__ == "__main__":
    main()
