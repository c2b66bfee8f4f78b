"""Read face images with labels from the formats users have: Kaggle's fer2013.csv(.gz), the
homework train.csv/test.csv, and folders of images sorted by split and class.

Bad input stops with one DataFormatError naming the file, the lines or images and what is
wrong, unless ``on_bad_rows="skip"`` asks to leave them out with a SkippedDataWarning.
"""

from fer_lightning.data.readers.api import FORMATS, read_all_rows, read_dataset
from fer_lightning.data.readers.problems import ON_BAD_ROWS, SkippedDataWarning
from fer_lightning.data.readers.table import SPLITS, ImageSet

__all__ = ["FORMATS", "ON_BAD_ROWS", "SPLITS", "ImageSet", "SkippedDataWarning", "read_all_rows", "read_dataset"]
