"""Errors and warnings as the commands show them: one line on stderr."""

from __future__ import annotations

import sys


def print_error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)


def print_warning(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)
