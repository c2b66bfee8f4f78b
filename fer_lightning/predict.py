"""`python -m fer_lightning.predict`: the command lives in fer_lightning.cli.predict."""

from fer_lightning.cli.predict import main

if __name__ == "__main__":
    main()
