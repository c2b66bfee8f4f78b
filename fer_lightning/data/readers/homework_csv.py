"""The homework CSVs: ``label,feature`` (training) and ``id,feature`` (unlabelled test)."""

from __future__ import annotations

from fer_lightning.data.readers.csv_file import CsvFile
from fer_lightning.data.readers.fields import (
    FieldError,
    parse_id,
    parse_label,
    parse_pixels,
)
from fer_lightning.data.readers.problems import ProblemLog
from fer_lightning.data.readers.table import NO_LABEL, SPLITS, ParsedRows, RowsBuilder
from fer_lightning.errors import DataFormatError

HOMEWORK_HEADER = "'label,feature' (training file) or 'id,feature' (test file)"


def read_homework_csv(csv_file: CsvFile, on_bad_rows: str) -> ParsedRows:
    """A file with labels is the "train" split, one without is "test"; ids come from the id column."""
    columns = csv_file.column_indices(("feature",), ("label", "id"), HOMEWORK_HEADER)
    pixels_col, label_col, id_col = columns["feature"], columns.get("label"), columns.get("id")
    split = SPLITS.index("train" if label_col is not None else "test")
    source = str(csv_file.path)
    problems = ProblemLog(source)
    rows = RowsBuilder(source)
    first_line_of_id: dict[int, int] = {}
    row_count = 0
    for lineno, fields in csv_file.rows():
        position, row_count = row_count, row_count + 1
        if len(fields) != len(columns):
            problems.add(f"line {lineno}", f"expected {len(columns)} comma-separated fields, found {len(fields)}")
            continue
        try:
            row_id = position if id_col is None else parse_id(fields[id_col])
            label = NO_LABEL if label_col is None else parse_label(fields[label_col])
            pixels = parse_pixels(fields[pixels_col])
        except FieldError as exc:
            problems.add(f"line {lineno}", str(exc))
            continue
        if row_id in first_line_of_id:
            # Two rows with one id would make a prediction file ambiguous.
            problems.add(f"line {lineno}", f"id {row_id} repeats the id of line {first_line_of_id[row_id]}")
            continue
        first_line_of_id[row_id] = lineno
        rows.add(pixels, label, split, row_id, row_id)
    if row_count == 0:
        raise DataFormatError(f"{source}: no rows: the file has a header but no data")
    problems.settle(on_bad_rows)
    return rows.build(skipped=problems.count)
