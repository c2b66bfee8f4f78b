"""Sweeps, one place: each run of a Hydra multirun read back (leaderboard.py), the line that ends a
sweep (summary.py), what a failed job means to the sweeper (failures.py), and the best runs averaged
into one ensemble file (ensemble.py)."""
