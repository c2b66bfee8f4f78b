"""`python -m fer_lightning.ensemble`: the command lives in fer_lightning.cli.ensemble."""

from fer_lightning.cli.ensemble import main

if __name__ == "__main__":
    main()
