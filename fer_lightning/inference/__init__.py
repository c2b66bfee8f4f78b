"""Trained models in use: checkpoint and ensemble files, evaluation, prediction, export."""
