"""Kaggle's fer2013.csv (plain or .gz): ``emotion,pixels,Usage``, one 48x48 face per row."""

from __future__ import annotations

from fer_lightning.data.readers.csv_file import CsvFile
from fer_lightning.data.readers.fields import FieldError, parse_label, parse_pixels
from fer_lightning.data.readers.problems import ProblemLog, short_repr
from fer_lightning.data.readers.table import SPLITS, ParsedRows, RowsBuilder
from fer_lightning.errors import DataFormatError

KAGGLE_HEADER = "'emotion,pixels,Usage' (Kaggle FER2013)"
# Kaggle's Usage values, compared lower-case; a file may hold any subset of them.
USAGE_TO_SPLIT = {"training": "train", "publictest": "val", "privatetest": "test"}


def read_kaggle_csv(csv_file: CsvFile, on_bad_rows: str) -> ParsedRows:
    """Every row, tagged train/val/test by Usage; a file without a Usage column is all "train"."""
    columns = csv_file.column_indices(("emotion", "pixels"), ("usage",), KAGGLE_HEADER)
    label_col, pixels_col, usage_col = columns["emotion"], columns["pixels"], columns.get("usage")
    source = str(csv_file.path)
    problems = ProblemLog(source)
    rows = RowsBuilder(source)
    split_sizes = [0] * len(SPLITS)
    row_count = 0
    for lineno, fields in csv_file.rows():
        file_id, row_count = row_count, row_count + 1
        if len(fields) != len(columns):
            problems.add(f"line {lineno}", f"expected {len(columns)} comma-separated fields, found {len(fields)}")
            continue
        split = SPLITS.index("train")
        if usage_col is not None:
            usage = fields[usage_col].strip().decode("utf-8", errors="replace")
            if usage.lower() not in USAGE_TO_SPLIT:
                problems.add(f"line {lineno}", f"Usage {short_repr(usage)} is not Training, PublicTest or PrivateTest")
                continue
            split = SPLITS.index(USAGE_TO_SPLIT[usage.lower()])
        # Counted before the other checks: a skipped row keeps its place, so ids match the file.
        split_id, split_sizes[split] = split_sizes[split], split_sizes[split] + 1
        try:
            label = parse_label(fields[label_col])
            pixels = parse_pixels(fields[pixels_col])
        except FieldError as exc:
            problems.add(f"line {lineno}", str(exc))
            continue
        rows.add(pixels, label, split, split_id, file_id)
    if row_count == 0:
        raise DataFormatError(f"{source}: no rows: the file has a header but no data")
    problems.settle(on_bad_rows)
    return rows.build(skipped=problems.count)
