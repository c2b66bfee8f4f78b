"""Hydra plugins of fer-lightning (Hydra finds sweepers and launchers only in this namespace)."""
