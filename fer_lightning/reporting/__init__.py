"""The HTML report of a finished run or a shipped model: a pipeline that loads the model and its data,
scores it, explains it, and lays out what viz/ draws (viz/ itself only draws)."""
