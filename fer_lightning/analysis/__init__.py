"""Analysis of the model and of the math behind it."""
