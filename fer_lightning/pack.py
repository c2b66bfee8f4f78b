"""`python -m fer_lightning.pack`: the command lives in fer_lightning.cli.pack."""

from fer_lightning.cli.pack import main

if __name__ == "__main__":
    main()
