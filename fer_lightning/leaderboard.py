"""`python -m fer_lightning.leaderboard`: the command lives in fer_lightning.cli.leaderboard."""

from fer_lightning.cli.leaderboard import main

if __name__ == "__main__":
    main()
