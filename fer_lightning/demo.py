"""`python -m fer_lightning.demo`: the command lives in fer_lightning.cli.demo."""

from fer_lightning.cli.demo import main

if __name__ == "__main__":
    main()
