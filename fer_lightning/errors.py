"""Errors a user can fix. Entry points print them as one line instead of a traceback."""


class FerError(Exception):
    """Base class: the message alone tells the user what is wrong and where."""


class DataFormatError(FerError):
    """An input file or folder holds data this project cannot read correctly."""


class ConfigError(FerError):
    """A configuration value is impossible; raised before any work starts."""


class CheckpointError(FerError):
    """A file is not a checkpoint (or ensemble) of this project, or cannot be loaded safely."""


class WriteError(FerError):
    """An output cannot be written (a full disk, no permission); the message names the file or folder."""
