"""Writing files safely: never half of one (a crash, a full disk), never over a command's inputs."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from fer_lightning.errors import ConfigError, WriteError


@contextmanager
def atomic_write(path: str | Path, mode: str = "wb", **open_args: object) -> Iterator[IO]:
    """An open temporary file beside ``path``, renamed over it only when the block succeeds.

    A failed block (an exception, a full disk) leaves ``path`` as it was and removes the
    temporary file; concurrent readers see the old file or the new one, never a mixture.
    """
    path = Path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(partial, mode, **open_args) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())  # on disk before it replaces the old file, not only in the page cache
        os.replace(partial, path)
    except OSError as error:
        # A full disk's error names no file (it comes from write or close): name the one being written.
        raise write_error(path, error) from None
    finally:
        try:
            partial.unlink(missing_ok=True)
        except OSError:
            pass  # a folder that cannot be written holds no partial file; the error above says why


def write_text(path: str | Path, text: str) -> None:
    """``path`` holds ``text`` (UTF-8) in full, or is left as it was."""
    with atomic_write(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_write(path) as handle:
        handle.write(data)


def write_error(path: str | Path, error: OSError) -> WriteError:
    """``<path>: cannot write (No space left on device)``: one line naming what was being written."""
    return WriteError(f"{path}: cannot write ({error.strerror or error})")


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file or folder on disk: through symlinks, hard links, ``..`` and
    relative paths alike. A path that does not exist is the same as nothing."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def check_output(
    output: str | Path,
    inputs: Iterable[tuple[str, str | Path]],
    is_own_kind: Callable[[Path], bool],
    overwrite: bool,
    *,
    kind: str,
    key: str = "output",
    overwrite_flag: str = "overwrite=true",
) -> None:
    """Refuse, before any work, to write a command's ``output`` where it would destroy something.

    ``inputs``: (what it is, path) for each file or folder the command reads; the output may never be
    one of them, whatever ``overwrite`` says. An existing file that ``is_own_kind`` does not recognise
    as this command's (``kind``: "an evaluate result") is replaced only with ``overwrite``; an empty
    file holds nothing to lose.
    """
    output = Path(output)
    if not output.exists():
        return
    for what, path in inputs:
        if same_file(output, path):
            raise ConfigError(f"{key}={output} is {what}; choose another {key}")
    if output.is_dir():
        raise ConfigError(f"{key}={output} is a folder; name a file")
    if overwrite or output.stat().st_size == 0:
        return
    try:
        own = is_own_kind(output)
    except (OSError, ValueError):
        own = False
    if not own:
        raise ConfigError(f"{key}={output} exists and is not {kind}: pass {overwrite_flag} to replace it")


MAX_JSON_BYTES = 4 * 2**20


def read_json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when the file cannot be read, is not JSON, or holds another
    kind of value (a list, a string): files in a sweep may be damaged or written by anything."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_JSON_BYTES + 1)
        if len(data) > MAX_JSON_BYTES:  # the project writes a few kB; more is not one of its files
            return None
        document = json.loads(data)
    except (OSError, ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None
