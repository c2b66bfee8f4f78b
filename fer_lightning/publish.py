"""`python -m fer_lightning.publish`: the command lives in fer_lightning.cli.publish."""

from fer_lightning.cli.publish import main

if __name__ == "__main__":
    main()
