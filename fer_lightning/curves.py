"""`python -m fer_lightning.curves`: the command lives in fer_lightning.cli.curves."""

from fer_lightning.cli.curves import main

if __name__ == "__main__":
    main()
