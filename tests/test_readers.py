"""Each reader on tiny files written here: values, labels, split mapping, ids, names, caching."""

from __future__ import annotations

import gzip
import os
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_lightning.classes import CLASS_NAMES
from fer_lightning.data.readers import ImageSet, SkippedDataWarning, read_all_rows, read_dataset
from fer_lightning.errors import DataFormatError

RNG = np.random.default_rng(7)


def random_faces(count: int) -> np.ndarray:
    return RNG.integers(0, 256, (count, 48, 48), dtype=np.uint8)


def pixel_text(face: np.ndarray) -> str:
    return " ".join(map(str, face.ravel().tolist()))


def write_kaggle(path: Path, labels: list[int], faces: np.ndarray, usages: list[str]) -> Path:
    lines = ["emotion,pixels,Usage"] + [f"{label},{pixel_text(face)},{usage}"
                                        for label, face, usage in zip(labels, faces, usages, strict=True)]
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def gray_of_bgr(b: int, g: int, r: int) -> float:
    """ITU-R BT.601 luma, the weights OpenCV's BGR2GRAY uses."""
    return 0.299 * r + 0.587 * g + 0.114 * b


def write_image(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


# ------------------------------------------------------------------------------------ Kaggle CSV
def test_kaggle_csv_maps_usage_to_splits_with_pixels_labels_and_ids(tmp_path: Path) -> None:
    faces = random_faces(5)
    usages = ["Training", "PublicTest", "Training", "PrivateTest", "Training"]
    path = write_kaggle(tmp_path / "fer2013.csv", [3, 0, 6, 1, 2], faces, usages)

    sets = read_dataset(path)

    assert list(sets) == ["train", "val", "test"]
    train, val, test = sets["train"], sets["val"], sets["test"]
    np.testing.assert_array_equal(train.images, faces[[0, 2, 4]])
    np.testing.assert_array_equal(train.labels, [3, 6, 2])
    np.testing.assert_array_equal(train.ids, [0, 1, 2])
    np.testing.assert_array_equal(val.images, faces[[1]])
    np.testing.assert_array_equal(val.labels, [0])
    np.testing.assert_array_equal(test.labels, [1])
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int64 and train.ids.dtype == np.int64
    assert train.source == str(path) and train.names is None


def test_kaggle_csv_without_private_test_has_only_train_and_val(tmp_path: Path) -> None:
    path = write_kaggle(tmp_path / "f.csv", [0, 1, 2], random_faces(3), ["Training", "PublicTest", "Training"])
    assert set(read_dataset(path)) == {"train", "val"}


def test_read_all_rows_combines_usages_in_file_order(tmp_path: Path) -> None:
    faces = random_faces(4)
    path = write_kaggle(tmp_path / "f.csv", [5, 4, 3, 2], faces, ["PrivateTest", "Training", "PublicTest", "Training"])

    rows = read_all_rows(path)

    np.testing.assert_array_equal(rows.images, faces)
    np.testing.assert_array_equal(rows.labels, [5, 4, 3, 2])
    np.testing.assert_array_equal(rows.ids, [0, 1, 2, 3])


def test_gzip_file_reads_the_same_as_plain(tmp_path: Path) -> None:
    faces = random_faces(3)
    args = ([1, 2, 3], faces, ["Training", "PublicTest", "Training"])
    plain = read_dataset(write_kaggle(tmp_path / "f.csv", *args))
    packed = read_dataset(write_kaggle(tmp_path / "f.csv.gz", *args))
    assert plain.keys() == packed.keys()
    for split in plain:
        np.testing.assert_array_equal(plain[split].images, packed[split].images)
        np.testing.assert_array_equal(plain[split].labels, packed[split].labels)
        np.testing.assert_array_equal(plain[split].ids, packed[split].ids)


def test_kaggle_header_variants_read_alike(tmp_path: Path) -> None:
    """Excel's byte-order mark, spaces, quotes and another column order are all the same data."""
    face = random_faces(1)[0]
    path = tmp_path / "variant.csv"
    path.write_bytes(b'\xef\xbb\xbf"Usage", emotion ,pixels\n"PublicTest",4,"' + pixel_text(face).encode() + b'"\n')

    sets = read_dataset(path)

    np.testing.assert_array_equal(sets["val"].images[0], face)
    np.testing.assert_array_equal(sets["val"].labels, [4])


def test_kaggle_file_without_usage_column_is_all_training(tmp_path: Path) -> None:
    faces = random_faces(2)
    path = tmp_path / "f.csv"
    path.write_text("emotion,pixels\n" + "".join(f"{i},{pixel_text(f)}\n" for i, f in enumerate(faces)))
    sets = read_dataset(path, fmt="kaggle_csv")
    assert list(sets) == ["train"]
    np.testing.assert_array_equal(sets["train"].images, faces)


# ---------------------------------------------------------------------------------- homework CSV
def test_homework_train_csv_is_labelled_train(tmp_path: Path) -> None:
    faces = random_faces(3)
    path = tmp_path / "train.csv"
    path.write_text("label,feature\n" + "".join(f"{label},{pixel_text(face)}\n"
                                                for label, face in zip([6, 0, 3], faces, strict=True)))

    sets = read_dataset(path)

    assert list(sets) == ["train"]
    np.testing.assert_array_equal(sets["train"].images, faces)
    np.testing.assert_array_equal(sets["train"].labels, [6, 0, 3])
    np.testing.assert_array_equal(sets["train"].ids, [0, 1, 2])


def test_homework_test_csv_is_unlabelled_test_with_ids_from_the_id_column(tmp_path: Path) -> None:
    faces = random_faces(3)
    path = tmp_path / "test.csv"
    path.write_text("id,feature\n" + "".join(f"{row_id},{pixel_text(face)}\n"
                                             for row_id, face in zip([10, 7, 42], faces, strict=True)))

    sets = read_dataset(path)
    rows = read_all_rows(path)

    assert list(sets) == ["test"]
    assert sets["test"].labels is None and rows.labels is None
    np.testing.assert_array_equal(sets["test"].ids, [10, 7, 42])
    np.testing.assert_array_equal(rows.ids, [10, 7, 42])
    np.testing.assert_array_equal(rows.images, faces)


def test_explicit_format_matches_auto_detection(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("label,feature\n" + f"2,{pixel_text(random_faces(1)[0])}\n")
    auto = read_all_rows(path)
    explicit = read_all_rows(path, fmt="homework_csv")
    np.testing.assert_array_equal(auto.images, explicit.images)
    np.testing.assert_array_equal(auto.labels, explicit.labels)


# --------------------------------------------------------------------------------- image folders
BGR = (30, 200, 10)


@pytest.fixture
def image_tree(tmp_path: Path) -> Path:
    """Split layout with images of other sizes, depths and channel counts."""
    root = tmp_path / "faces"
    write_image(root / "train" / "happy" / "rgb.png", np.full((64, 80, 3), BGR, np.uint8))
    bgra = np.zeros((50, 30, 4), np.uint8)
    bgra[...] = (*BGR, 77)  # alpha must not change the gray level
    write_image(root / "train" / "0" / "rgba.png", bgra)
    write_image(root / "train" / "Sad" / "deep.png", np.full((48, 48), 40000, np.uint16))
    write_image(root / "validation" / "surprise" / "gray.bmp", np.full((96, 96), 200, np.uint8))
    write_image(root / "test" / "NEUTRAL" / "a.jpg", np.full((60, 60, 3), 90, np.uint8))
    return root


def test_image_folder_reads_any_image_as_48x48_gray_with_splits_and_labels(image_tree: Path) -> None:
    sets = read_dataset(image_tree)

    assert list(sets) == ["train", "val", "test"]
    train = sets["train"]
    assert train.images.shape == (3, 48, 48) and train.images.dtype == np.uint8
    # Ordered by class index, then file name.
    assert train.names == ("train/0/rgba.png", "train/happy/rgb.png", "train/Sad/deep.png")
    np.testing.assert_array_equal(train.labels, [0, CLASS_NAMES.index("happy"), CLASS_NAMES.index("sad")])
    np.testing.assert_array_equal(train.ids, [0, 1, 2])
    expected_gray = gray_of_bgr(*BGR)
    assert np.abs(train.images[0].astype(float) - expected_gray).max() <= 1  # RGBA
    assert np.abs(train.images[1].astype(float) - expected_gray).max() <= 1  # RGB 64x80
    np.testing.assert_array_equal(train.images[2], round(40000 / 257))  # 16-bit scaled, not cut to a byte
    np.testing.assert_array_equal(sets["val"].images, 200)
    np.testing.assert_array_equal(sets["val"].labels, [CLASS_NAMES.index("surprise")])
    assert np.abs(sets["test"].images.astype(int) - 90).max() <= 2  # JPEG is lossy
    assert sets["test"].source == str(image_tree)


def test_image_folder_keeps_orientation_when_resizing(tmp_path: Path) -> None:
    image = np.zeros((64, 80), np.uint8)
    image[:, :40] = 255  # left half white
    image[:8, :] = 128  # a grey band along the top
    write_image(tmp_path / "train" / "fear" / "x.png", image)

    face = read_dataset(tmp_path)["train"].images[0]

    np.testing.assert_array_equal(face[10:, :23], 255)
    np.testing.assert_array_equal(face[10:, 25:], 0)
    np.testing.assert_array_equal(face[:5, :], 128)


def test_read_all_rows_on_a_folder_combines_splits(image_tree: Path) -> None:
    rows = read_all_rows(image_tree)
    assert rows.names == ("train/0/rgba.png", "train/happy/rgb.png", "train/Sad/deep.png",
                          "validation/surprise/gray.bmp", "test/NEUTRAL/a.jpg")
    np.testing.assert_array_equal(rows.ids, np.arange(5))
    np.testing.assert_array_equal(rows.labels, [0, 3, 4, 5, 6])


def test_class_folders_at_the_top_are_all_training(tmp_path: Path) -> None:
    write_image(tmp_path / "angry" / "1.png", np.full((48, 48), 10, np.uint8))
    write_image(tmp_path / "6" / "2.jpeg", np.full((48, 48), 20, np.uint8))
    sets = read_dataset(tmp_path)
    assert list(sets) == ["train"]
    np.testing.assert_array_equal(sets["train"].labels, [0, 6])


@pytest.mark.parametrize("folder", ["val", "valid", "Validation"])
def test_validation_folder_aliases(tmp_path: Path, folder: str) -> None:
    write_image(tmp_path / folder / "disgust" / "1.png", np.zeros((48, 48), np.uint8))
    assert list(read_dataset(tmp_path)) == ["val"]


def test_a_folder_of_bare_images_is_an_unlabelled_test_set(tmp_path: Path) -> None:
    write_image(tmp_path / "b.png", np.full((48, 48), 5, np.uint8))
    write_image(tmp_path / "a.png", np.full((48, 48), 9, np.uint8))
    sets = read_dataset(tmp_path)
    assert list(sets) == ["test"]
    assert sets["test"].labels is None
    assert sets["test"].names == ("a.png", "b.png")
    np.testing.assert_array_equal(sets["test"].images[:, 0, 0], [9, 5])


def test_system_files_are_ignored(tmp_path: Path) -> None:
    write_image(tmp_path / "train" / "happy" / "1.png", np.zeros((48, 48), np.uint8))
    (tmp_path / "train" / "happy" / ".DS_Store").write_bytes(b"\0\1")
    (tmp_path / "train" / "happy" / "Thumbs.db").write_bytes(b"\0\1")
    (tmp_path / "__MACOSX").mkdir()
    (tmp_path / "README.md").write_text("faces")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(read_dataset(tmp_path)["train"]) == 1


# ------------------------------------------------------------------------------------------ cache
def test_cache_returns_the_same_data_and_notices_a_changed_file(tmp_path: Path) -> None:
    usages = ["Training", "PublicTest"]
    path = write_kaggle(tmp_path / "f.csv", [1, 2], np.full((2, 48, 48), 111, np.uint8), usages)
    cache = tmp_path / "cache"
    first = read_dataset(path, cache_dir=cache)
    assert len(list(cache.glob("*.npz"))) == 1
    again = read_dataset(path, cache_dir=cache)
    for split in first:
        np.testing.assert_array_equal(first[split].images, again[split].images)
        np.testing.assert_array_equal(first[split].labels, again[split].labels)
        np.testing.assert_array_equal(first[split].ids, again[split].ids)

    # Same size, new content: only the modification time tells the versions apart.
    size, mtime = path.stat().st_size, path.stat().st_mtime_ns
    write_kaggle(path, [1, 2], np.full((2, 48, 48), 222, np.uint8), usages)
    os.utime(path, ns=(mtime + 10**9, mtime + 10**9))
    assert path.stat().st_size == size
    changed = read_dataset(path, cache_dir=cache)
    np.testing.assert_array_equal(changed["train"].images, 222)
    # The new version's entry replaced the old one; another file's entry is left alone.
    assert len(list(cache.glob("f.csv-*.npz"))) == 1
    (tmp_path / "other").mkdir()
    other = write_kaggle(tmp_path / "other" / "f.csv", [3, 4], np.full((2, 48, 48), 7, np.uint8), usages)
    read_dataset(other, cache_dir=cache)
    assert len(list(cache.glob("f.csv-*.npz"))) == 2
    np.testing.assert_array_equal(read_dataset(path, cache_dir=cache)["train"].images, 222)


def test_cache_keeps_folder_names_and_missing_labels(tmp_path: Path) -> None:
    root = tmp_path / "faces"
    write_image(root / "x.png", np.full((48, 48), 3, np.uint8))
    read_all_rows(root, cache_dir=tmp_path / "cache")
    cached = read_all_rows(root, cache_dir=tmp_path / "cache")
    assert cached.names == ("x.png",) and cached.labels is None


def test_a_damaged_cache_entry_is_replaced(tmp_path: Path) -> None:
    faces = random_faces(1)
    path = write_kaggle(tmp_path / "f.csv", [0], faces, ["Training"])
    cache = tmp_path / "cache"
    read_all_rows(path, cache_dir=cache)
    (entry,) = cache.glob("*.npz")
    entry.write_bytes(b"not an npz")
    np.testing.assert_array_equal(read_all_rows(path, cache_dir=cache).images, faces)


def test_reads_that_skipped_rows_are_not_cached(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("emotion,pixels,Usage\n" + f"1,{pixel_text(random_faces(1)[0])},Training\n9,1 2,Training\n")
    cache = tmp_path / "cache"
    with pytest.warns(SkippedDataWarning):
        read_dataset(path, on_bad_rows="skip", cache_dir=cache)
    assert not list(cache.glob("*.npz"))
    with pytest.warns(SkippedDataWarning):  # the warning comes again on the next read
        read_dataset(path, on_bad_rows="skip", cache_dir=cache)


def test_image_set_refuses_inconsistent_arrays() -> None:
    with pytest.raises(ValueError, match="48"):
        ImageSet(np.zeros((2, 32, 32), np.uint8), None, np.arange(2), "x")
    with pytest.raises(ValueError, match="one entry per image"):
        ImageSet(np.zeros((2, 48, 48), np.uint8), None, np.arange(3), "x")


def test_cache_notices_an_edit_that_keeps_size_and_modification_time(tmp_path: Path) -> None:
    usages = ["Training", "PublicTest"]
    path = write_kaggle(tmp_path / "f.csv", [1, 2], np.full((2, 48, 48), 111, np.uint8), usages)
    cache = tmp_path / "cache"
    read_dataset(path, cache_dir=cache)
    size, times = path.stat().st_size, (path.stat().st_atime_ns, path.stat().st_mtime_ns)
    write_kaggle(path, [1, 2], np.full((2, 48, 48), 222, np.uint8), usages)
    os.utime(path, ns=times)  # as a copy tool that keeps timestamps would leave it
    assert path.stat().st_size == size and path.stat().st_mtime_ns == times[1]
    np.testing.assert_array_equal(read_dataset(path, cache_dir=cache)["train"].images, 222)


def test_a_symlink_loop_in_an_image_folder_is_a_problem_that_skip_leaves_out(tmp_path: Path) -> None:
    for name in ("happy", "sad"):
        (tmp_path / "train" / name).mkdir(parents=True)
        for index in range(2):
            cv2.imwrite(str(tmp_path / "train" / name / f"{index}.png"), np.full((48, 48), 90 + index, np.uint8))
    (tmp_path / "train" / "happy" / "loop.png").symlink_to("loop.png")  # points at itself
    with pytest.raises(DataFormatError, match=r"loop\.png: cannot read the file: Too many levels of symbolic links"):
        read_dataset(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert len(read_dataset(tmp_path, on_bad_rows="skip")["train"].images) == 4
    assert any("loop.png" in str(w.message) for w in caught)
