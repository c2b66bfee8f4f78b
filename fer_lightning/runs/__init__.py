"""The run lifecycle: run directories, launch checks, training, the leaderboard of a sweep."""
