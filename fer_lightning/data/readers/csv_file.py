"""Line-by-line access to a CSV file, plain or gzip-compressed, with its header split off.

Lines are handled as bytes and split on commas directly: Python's csv module is several times
slower on FER2013's 9 kB pixel lines. Lines holding a quote character go through the csv module,
so quoted fields still parse correctly.
"""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fer_lightning.errors import DataFormatError

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
UTF8_BOM = b"\xef\xbb\xbf"
# What a damaged gzip stream raises part-way through reading.
_READ_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error, OSError)


def split_fields(line: bytes) -> list[bytes]:
    if b'"' not in line:
        return line.split(b",")
    try:
        fields = next(csv.reader([line.decode("utf-8", errors="replace")]))
    except csv.Error:
        return line.split(b",")  # the field checks then report the stray quotes
    return [field.encode() for field in fields]


def _open_binary(path: Path) -> tuple[BinaryIO, BinaryIO]:
    """(stream to read, underlying file): the same object unless the file is gzip-compressed."""
    try:
        handle = path.open("rb")
        magic = handle.read(4)
        handle.seek(0)
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot open: {exc.strerror or exc}") from exc
    if magic.startswith(GZIP_MAGIC):  # the content decides, so a .csv that is really gzip also reads
        return gzip.GzipFile(fileobj=handle, mode="rb"), handle
    if magic == ZIP_MAGIC:
        handle.close()
        raise DataFormatError(f"{path}: is a zip archive, not a CSV file; extract it and point at the CSV inside")
    if path.suffix == ".gz":
        handle.close()
        raise DataFormatError(f"{path}: is named .gz but is not gzip-compressed (no gzip header)")
    return handle, handle


@dataclass
class CsvFile:
    """An open CSV: ``columns`` is the header (stripped, lower-case); ``rows()`` yields the rest."""

    path: Path
    header: bytes
    header_lineno: int
    _stream: BinaryIO
    _raw: BinaryIO

    @property
    def columns(self) -> list[str]:
        if b"\x00" in self.header or b"\r" in self.header:
            return []  # binary data or CR-only line endings: header_problem explains
        return [field.decode("utf-8", errors="replace").strip().lower() for field in split_fields(self.header)]

    def rows(self) -> Iterator[tuple[int, list[bytes]]]:
        """(1-based line number, fields) for each non-blank line after the header."""
        lineno = self.header_lineno
        try:
            for lineno, line in enumerate(self._stream, start=self.header_lineno + 1):
                line = line.rstrip(b"\r\n")
                if line.strip():  # blank lines (a trailing newline, say) carry no row
                    yield lineno, split_fields(line)
        except _READ_ERRORS as exc:
            raise DataFormatError(
                f"{self.path}: the file is truncated or corrupt after line {lineno} ({exc}); "
                "download or copy it again"
            ) from exc

    def header_problem(self, expected: str) -> DataFormatError:
        """The error for a header that names none of the expected columns."""
        line, where = self.header, f"line {self.header_lineno}"
        if b"\x00" in line:
            return DataFormatError(f"{self.path}: holds binary data (NUL bytes), not a text CSV; is it an archive "
                                   f"or a UTF-16 file? Expected a header line {expected}")
        if b"\r" in line:
            return DataFormatError(f"{self.path}: uses old Mac (CR-only) line endings; "
                                   "save it with LF or CRLF line endings")
        shown = line[:60].decode("utf-8", errors="replace")
        if line.split(b",")[0].strip().strip(b'"').isdigit():
            return DataFormatError(f"{self.path}: has no header: {where} already looks like data ({shown!r}...). "
                                   f"Add the header line {expected}")
        return DataFormatError(f"{self.path}: {where} is {shown!r}, not a recognised header. Expected {expected}")

    def column_indices(self, required: tuple[str, ...], optional: tuple[str, ...], expected: str) -> dict[str, int]:
        """Column name -> position; the header must hold every required name and nothing unknown.

        Unknown columns are refused rather than ignored: a misspelt optional column ("Usages")
        would otherwise silently change how the rows are read.
        """
        columns = self.columns
        if not any(name in columns for name in required + optional):
            raise self.header_problem(expected)  # no header at all, or another format's
        shown = self.header[:80].decode("utf-8", errors="replace")
        missing = [name for name in required if name not in columns]
        unknown = [name for name in columns if name not in required + optional]
        repeated = sorted({name for name in columns if columns.count(name) > 1})
        for problem, names in (("lacks the column", missing), ("has the unknown column", unknown),
                               ("repeats the column", repeated)):
            if names:
                raise DataFormatError(f"{self.path}: the header {shown!r} (line {self.header_lineno}) "
                                      f"{problem}{'s' if len(names) > 1 else ''} {', '.join(map(repr, names))}; "
                                      f"expected {expected}")
        return {name: columns.index(name) for name in columns}

    def close(self) -> None:
        self._stream.close()
        self._raw.close()


def open_csv(path: Path) -> CsvFile:
    """Open ``path`` and read its header line; the caller closes the returned CsvFile."""
    stream, raw = _open_binary(path)
    try:
        header, header_lineno = b"", 0
        for header_lineno, line in enumerate(stream, start=1):  # noqa: B007 (used after the loop)
            header = line.rstrip(b"\r\n")
            if header.strip():
                break
        if not header.strip():
            raise DataFormatError(f"{path}: the file is empty; expected a header line and rows")
    except BaseException as exc:
        stream.close()
        raw.close()
        if isinstance(exc, _READ_ERRORS):
            raise DataFormatError(f"{path}: cannot read: the file is truncated or corrupt ({exc})") from exc
        raise
    if header.startswith(UTF8_BOM):  # files saved by Excel start with a byte-order mark
        header = header[len(UTF8_BOM):]
    return CsvFile(path, header, header_lineno, stream, raw)
