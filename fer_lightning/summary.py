"""`python -m fer_lightning.summary`: the command lives in fer_lightning.cli.summary."""

from fer_lightning.cli.summary import main

if __name__ == "__main__":
    main()
