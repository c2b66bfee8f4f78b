"""Collect bad rows/images while reading, then fail once with a summary or skip them with a warning.

Reading goes on past the first problem so that one error message can say how many there are:
fixing a file one bad row per run is slow.
"""

from __future__ import annotations

import warnings

from fer_lightning.config.choices import ON_BAD_ROWS, allowed
from fer_lightning.errors import ConfigError, DataFormatError

SHOWN_PROBLEMS = 5


class SkippedDataWarning(UserWarning):
    """Rows or images were left out because ``on_bad_rows="skip"``."""


def check_on_bad_rows(on_bad_rows: str) -> None:
    if on_bad_rows not in ON_BAD_ROWS:
        raise ConfigError(f"data.on_bad_rows={on_bad_rows!r} is not allowed: {allowed(ON_BAD_ROWS)}")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def short_repr(value: bytes | str, limit: int = 20) -> str:
    """A field value for a message: long values (a whole pixel string) are cut."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return repr(value if len(value) <= limit else value[:limit] + "...")


class ProblemLog:
    """Problems found in one source; ``where`` is "line 7" for files, a relative path for folders."""

    def __init__(self, source: str, noun: str = "bad row") -> None:
        self.source = source
        self.noun = noun
        self.count = 0
        self._shown: list[str] = []

    def add(self, where: str, what: str) -> None:
        self.count += 1
        if len(self._shown) < SHOWN_PROBLEMS:
            self._shown.append(f"{where}: {what}")

    def __bool__(self) -> bool:
        return self.count > 0

    def _summary(self) -> str:
        listed = "; ".join(self._shown)
        more = self.count - len(self._shown)
        if more:
            listed += f"; and {more} more"
        return listed

    def settle(self, on_bad_rows: str) -> None:
        """Raise one DataFormatError for everything found, or warn that it was skipped."""
        if not self.count:
            return
        if on_bad_rows == "raise":
            raise DataFormatError(
                f"{self.source}: {_plural(self.count, self.noun)}: {self._summary()}. "
                "Fix them, or set data.on_bad_rows=skip to leave them out."
            )
        warnings.warn(
            f"{self.source}: skipped {_plural(self.count, self.noun)} (data.on_bad_rows=skip): {self._summary()}",
            SkippedDataWarning,
            stacklevel=6,  # the caller of read_dataset/read_all_rows: settle < reader < _read < _parse < api
        )
