"""`python -m fer_lightning.report`: the command lives in fer_lightning.cli.report."""

from fer_lightning.cli.report import main

if __name__ == "__main__":
    main()
