"""`python -m fer_lightning.evaluate`: the command lives in fer_lightning.cli.evaluate."""

from fer_lightning.cli.evaluate import main

if __name__ == "__main__":
    main()
