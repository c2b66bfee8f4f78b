"""`python -m fer_lightning.export`: the command lives in fer_lightning.cli.export."""

from fer_lightning.cli.export import main

if __name__ == "__main__":
    main()
