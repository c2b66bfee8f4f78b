"""Bad input gives one DataFormatError naming the file, the line or image and the problem;
on_bad_rows="skip" leaves bad rows/images out with a warning that counts them."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_lightning.data.readers import SkippedDataWarning, read_all_rows, read_dataset
from fer_lightning.errors import ConfigError, DataFormatError

HEADER = "emotion,pixels,Usage"


def pixels(value: int = 7, count: int = 2304) -> str:
    return " ".join([str(value)] * count)


def good_row(label: int = 3, value: int = 7, usage: str = "Training") -> str:
    return f"{label},{pixels(value)},{usage}"


def write_csv(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def read_error(path: Path | str, **kwargs) -> str:
    with pytest.raises(DataFormatError) as caught:
        read_dataset(path, **kwargs)
    return str(caught.value)


def assert_names_problem(message: str, path: Path, *parts: str) -> None:
    assert str(path) in message
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


# ------------------------------------------------------------------------------------- CSV rows
def test_wrong_pixel_count_names_file_line_and_counts(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", HEADER, good_row(), f"1,{pixels(count=2303)},Training")
    message = read_error(path)
    assert_names_problem(message, path, "line 3", "2304", "found 2303", "data.on_bad_rows=skip")


def test_non_numeric_pixel(tmp_path: Path) -> None:
    values = pixels().split()
    values[4] = "x7"
    path = write_csv(tmp_path / "f.csv", HEADER, f"2,{' '.join(values)},Training")
    assert_names_problem(read_error(path), path, "line 2", "pixel 5", "'x7'")


@pytest.mark.parametrize("bad", ["256", "-1", "1.5", "99999999999999999999999"])
def test_pixel_outside_0_to_255(tmp_path: Path, bad: str) -> None:
    values = pixels().split()
    values[-1] = bad  # the last position: a parser stopping early would still count 2304 values
    path = write_csv(tmp_path / "f.csv", HEADER, good_row(), f"2,{' '.join(values)},Training")
    assert_names_problem(read_error(path), path, "line 3", "pixel 2304")


@pytest.mark.parametrize("label", ["7", "-1", "3.0", "happy", ""])
def test_label_outside_0_to_6_or_not_an_integer(tmp_path: Path, label: str) -> None:
    path = write_csv(tmp_path / "f.csv", HEADER, good_row(), f"{label},{pixels()},Training")
    assert_names_problem(read_error(path), path, "line 3", f"label {label!r}", "0..6")


def test_unknown_usage_value(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", HEADER, good_row(usage="Testing"))
    assert_names_problem(read_error(path), path, "line 2", "'Testing'", "PrivateTest")


def test_row_with_a_missing_field(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", HEADER, f"3,{pixels()}")
    assert_names_problem(read_error(path), path, "line 2", "expected 3", "found 2")


def test_many_bad_rows_show_the_first_five_and_the_total(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", HEADER, *[f"9,{pixels()},Training" for _ in range(8)], good_row())
    message = read_error(path)
    assert "8 bad rows" in message and "and 3 more" in message
    assert re.findall(r"line (\d+)", message) == ["2", "3", "4", "5", "6"]


def test_duplicate_homework_ids(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "test.csv", "id,feature", f"4,{pixels()}", f"5,{pixels()}", f"4,{pixels()}")
    assert_names_problem(read_error(path), path, "line 4", "id 4", "line 2")


# ------------------------------------------------------------------------------ skip bad rows
def test_skip_leaves_bad_rows_out_with_a_counting_warning_and_keeps_ids(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", HEADER, good_row(1, 10), f"2,{pixels(300)},Training",
                     good_row(4, 40), f"x,{pixels()},Training", good_row(5, 50, "PublicTest"))

    with pytest.warns(SkippedDataWarning, match=r"skipped 2 bad rows") as caught:
        sets = read_dataset(path, on_bad_rows="skip")

    assert "line 3" in str(caught[0].message) and "line 5" in str(caught[0].message)
    train = sets["train"]
    np.testing.assert_array_equal(train.labels, [1, 4])
    np.testing.assert_array_equal(train.images[:, 0, 0], [10, 40])
    np.testing.assert_array_equal(train.ids, [0, 2])  # the skipped row keeps its place
    np.testing.assert_array_equal(sets["val"].ids, [0])


def test_skip_with_every_row_bad_is_still_an_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", HEADER, f"9,{pixels()},Training")
    with pytest.warns(SkippedDataWarning), pytest.raises(DataFormatError, match="no usable rows"):
        read_dataset(path, on_bad_rows="skip")


# ---------------------------------------------------------------------------- whole-file errors
@pytest.mark.parametrize("header", ["emotion,Usage", "emotion,pixel,Usage"])
def test_missing_or_misnamed_column(tmp_path: Path, header: str) -> None:
    path = write_csv(tmp_path / "f.csv", header, "3,1 2 3")
    assert_names_problem(read_error(path), path, "lacks the column 'pixels'", "emotion,pixels,Usage")


def test_misspelt_optional_column_is_not_ignored(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", "emotion,pixels,Usages", good_row())
    assert_names_problem(read_error(path), path, "unknown column 'usages'")


def test_misnamed_homework_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "train.csv", "label,features", f"1,{pixels()}")
    assert_names_problem(read_error(path), path, "lacks the column 'feature'", "label,feature")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"")
    assert_names_problem(read_error(path), path, "empty")


def test_header_only_file_has_no_rows(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", HEADER)
    assert_names_problem(read_error(path), path, "no rows")


def test_header_less_file_says_which_header_is_expected(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", good_row(), good_row())
    assert_names_problem(read_error(path), path, "no header", "line 1", "emotion,pixels,Usage", "label,feature")


def test_unrecognised_header(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", "name,age", "bob,3")
    assert_names_problem(read_error(path), path, "not a recognised header", "emotion,pixels,Usage")


@pytest.mark.parametrize("cut", [0.5, 0.98])
def test_truncated_gzip_names_the_file(tmp_path: Path, cut: float) -> None:
    data = gzip.compress(("\n".join([HEADER] + [good_row(value=v % 256) for v in range(40)]) + "\n").encode())
    path = tmp_path / "fer2013.csv.gz"
    path.write_bytes(data[: int(len(data) * cut)])
    assert_names_problem(read_error(path), path, "truncated or corrupt")


def test_gz_name_without_gzip_content(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv.gz", HEADER, good_row())
    assert_names_problem(read_error(path), path, "not gzip-compressed")


def test_zip_archive_instead_of_csv(tmp_path: Path) -> None:
    path = tmp_path / "fer2013.zip"
    path.write_bytes(b"PK\x03\x04" + b"\0" * 40)
    assert_names_problem(read_error(path), path, "zip archive")


def test_binary_file_instead_of_csv(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes("emotion,pixels\n".encode("utf-16"))
    assert_names_problem(read_error(path), path, "binary")


def test_windows_line_endings_read_correctly(tmp_path: Path) -> None:
    faces = np.random.default_rng(1).integers(0, 256, (2, 2304))
    rows = zip([2, 5], faces, ["Training", "PublicTest"], strict=True)
    text = "\r\n".join([HEADER] + [f"{label},{' '.join(map(str, face))},{usage}" for label, face, usage in rows])
    path = tmp_path / "f.csv"
    path.write_bytes((text + "\r\n").encode())

    sets = read_dataset(path)

    np.testing.assert_array_equal(sets["train"].images.reshape(-1), faces[0])
    np.testing.assert_array_equal(sets["val"].images.reshape(-1), faces[1])  # last pixel before \r intact
    np.testing.assert_array_equal(sets["train"].labels, [2])
    np.testing.assert_array_equal(sets["val"].labels, [5])  # "PublicTest\r" still maps to val


def test_windows_line_endings_after_the_pixel_column(tmp_path: Path) -> None:
    faces = np.random.default_rng(2).integers(0, 256, (2, 2304))
    path = tmp_path / "test.csv"
    path.write_bytes(("id,feature\r\n" + "".join(f"{i},{' '.join(map(str, face))}\r\n"
                                                  for i, face in enumerate(faces))).encode())
    rows = read_all_rows(path)
    np.testing.assert_array_equal(rows.images.reshape(2, -1), faces)
    np.testing.assert_array_equal(rows.ids, [0, 1])


def test_old_mac_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(f"{HEADER}\r{good_row()}\r".encode())
    assert_names_problem(read_error(path), path, "CR-only")


def test_nonexistent_path_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "fer2013.csv"
    assert_names_problem(read_error(path), path, "no such file or folder")


def test_relative_missing_path_shows_where_it_was_looked_for(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    message = read_error("data/fer2013.csv")
    assert "data/fer2013.csv" in message and str(tmp_path / "data" / "fer2013.csv") in message


def test_format_that_does_not_fit_the_path(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", HEADER, good_row())
    assert "needs" not in read_error(path, fmt="image_folder")
    assert_names_problem(read_error(path, fmt="image_folder"), path, "is a file")
    assert_names_problem(read_error(tmp_path, fmt="kaggle_csv"), tmp_path, "is a folder")
    assert_names_problem(read_error(path, fmt="homework_csv"), path, "not a recognised header", "id,feature")


def test_impossible_options_are_config_errors(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", HEADER, good_row())
    with pytest.raises(ConfigError, match="on_bad_rows"):
        read_dataset(path, on_bad_rows="ignore")
    with pytest.raises(ConfigError, match="format"):
        read_all_rows(path, fmt="parquet")


# -------------------------------------------------------------------------------------- folders
def write_png(path: Path, value: int = 50) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((48, 48), value, np.uint8))
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "faces"
    write_png(root / "train" / "happy" / "1.png", 10)
    write_png(root / "train" / "sad" / "2.png", 20)
    return root


def test_non_image_file_in_a_class_folder(tree: Path) -> None:
    (tree / "train" / "happy" / "notes.txt").write_text("todo")
    assert_names_problem(read_error(tree), tree, "train/happy/notes.txt", "not an image", "data.on_bad_rows=skip")
    with pytest.warns(SkippedDataWarning, match="skipped 1 problem"):
        assert len(read_dataset(tree, on_bad_rows="skip")["train"]) == 2


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_image(tree: Path, suffix: str) -> None:
    ok, encoded = cv2.imencode(suffix, np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8))
    data = encoded.tobytes()
    (tree / "train" / "happy" / f"cut{suffix}").write_bytes(data[: len(data) // 2])
    assert_names_problem(read_error(tree), tree, f"train/happy/cut{suffix}", "truncated")
    with pytest.warns(SkippedDataWarning):
        train = read_dataset(tree, on_bad_rows="skip")["train"]
    assert train.names == ("train/happy/1.png", "train/sad/2.png")
    np.testing.assert_array_equal(train.ids, [0, 2])  # the unreadable image keeps its place


def test_unreadable_image_with_an_image_name(tree: Path) -> None:
    (tree / "train" / "sad" / "fake.png").write_text("not really a png")
    (tree / "train" / "sad" / "empty.bmp").write_bytes(b"")
    message = read_error(tree)
    assert_names_problem(message, tree, "2 problems", "train/sad/fake.png", "cannot decode", "train/sad/empty.bmp")


def test_unknown_class_folder(tree: Path) -> None:
    write_png(tree / "train" / "contempt" / "3.png")
    assert_names_problem(read_error(tree), tree, "train/contempt", "unknown class folder", "neutral", "0..6")
    with pytest.warns(SkippedDataWarning, match="contempt"):
        assert len(read_dataset(tree, on_bad_rows="skip")["train"]) == 2


def test_empty_class_folder_is_an_error_by_default(tree: Path) -> None:
    (tree / "train" / "fear").mkdir()
    assert_names_problem(read_error(tree), tree, "train/fear", "empty class folder")
    with pytest.warns(SkippedDataWarning, match="empty class folder"):
        sets = read_dataset(tree, on_bad_rows="skip")
    np.testing.assert_array_equal(sets["train"].labels, [3, 4])


def test_empty_split_folder(tree: Path) -> None:
    (tree / "val").mkdir()
    assert_names_problem(read_error(tree), tree, "val", "empty split folder")
    with pytest.warns(SkippedDataWarning):
        assert list(read_dataset(tree, on_bad_rows="skip")) == ["train"]


def test_image_outside_a_class_folder(tree: Path) -> None:
    write_png(tree / "train" / "stray.png")
    assert_names_problem(read_error(tree), tree, "train/stray.png", "outside a class folder")


def test_unknown_folder_next_to_split_folders(tree: Path) -> None:
    write_png(tree / "extra" / "happy" / "1.png")
    assert_names_problem(read_error(tree), tree, "extra", "unknown folder")


def test_nested_folder_inside_a_class_folder(tree: Path) -> None:
    write_png(tree / "train" / "happy" / "more" / "5.png")
    assert_names_problem(read_error(tree), tree, "train/happy/more", "nested folder")


def test_two_folders_for_one_class_or_split(tree: Path) -> None:
    write_png(tree / "train" / "3" / "9.png")
    assert_names_problem(read_error(tree), tree, "'happy'", "'3'", "both hold class 'happy'")


def test_two_folders_for_one_split(tree: Path) -> None:
    write_png(tree / "val" / "sad" / "1.png")
    write_png(tree / "validation" / "sad" / "1.png")
    assert_names_problem(read_error(tree), tree, "'val'", "'validation'")


def test_split_and_class_folders_mixed_at_the_top(tree: Path) -> None:
    write_png(tree / "angry" / "1.png")
    assert_names_problem(read_error(tree), tree, "mixes split folders")


@pytest.mark.parametrize("content", ["nothing", "unknown folders"])
def test_folder_without_images_in_a_known_layout(tmp_path: Path, content: str) -> None:
    if content == "unknown folders":
        write_png(tmp_path / "cats" / "1.png")
    message = read_error(tmp_path)
    assert_names_problem(message, tmp_path, "no images in a known layout", "<split>/<class>")
    if content == "unknown folders":
        assert "cats" in message


def test_labelled_and_unlabelled_splits_cannot_be_read_as_one_set(tree: Path) -> None:
    write_png(tree / "test" / "a.png")  # a test split of bare, unlabelled images
    sets = read_dataset(tree)
    assert sets["train"].labels is not None and sets["test"].labels is None
    with pytest.raises(DataFormatError, match="mixes labelled and unlabelled"):
        read_all_rows(tree)
