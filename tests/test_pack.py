"""python -m fer_lightning.pack: a data set as one compressed file, read back bit for bit, and
refused in one line when it is not what it claims."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from fer_lightning.data.readers import read_all_rows, read_dataset
from fer_lightning.data.readers.api import read_rows
from fer_lightning.data.readers.packed import write_packed
from fer_lightning.errors import DataFormatError
from fer_lightning.pack import main as pack_main
from tests.test_evaluate_predict import run_hydra_entry
from tests.test_readers import random_faces, write_kaggle

FIELDS = ("images", "labels", "splits", "split_ids", "file_ids")


@pytest.fixture
def kaggle(tmp_path):
    faces = random_faces(9)
    faces[0] = 255  # a saturated face and a black one: the stored differences wrap around 0 and 255
    faces[1] = 0
    return write_kaggle(tmp_path / "tiny.csv", [0, 1, 2, 3, 4, 5, 6, 0, 1], faces,
                        ["Training"] * 5 + ["PublicTest"] * 2 + ["PrivateTest"] * 2)


@pytest.mark.parametrize("encoding", ["rowdiff", "webp"])
def test_pack_reads_back_bit_for_bit_in_every_reader(kaggle, tmp_path, monkeypatch, capsys, encoding):
    run_hydra_entry(pack_main, monkeypatch, f"data.path={kaggle}", f"encoding={encoding}")
    packed = tmp_path / "tiny.npz"  # named after the source, beside it
    assert ("webp_bytes" in np.load(packed).files) == (encoding == "webp")
    assert "packed 9 faces (train 5, val 2, test 2)" in capsys.readouterr().out
    original, restored = read_rows(kaggle), read_rows(packed)
    for field in FIELDS:
        assert np.array_equal(getattr(original, field), getattr(restored, field)), field
        assert getattr(original, field).dtype == getattr(restored, field).dtype, field
    by_split = read_dataset(packed)
    assert set(by_split) == {"train", "val", "test"}
    assert np.array_equal(by_split["val"].images, read_dataset(kaggle)["val"].images)
    assert np.array_equal(read_all_rows(packed).images, read_all_rows(kaggle).images)


def test_pack_never_replaces_its_source_or_a_file_it_did_not_write(kaggle, tmp_path, monkeypatch, capsys):
    other = tmp_path / "notes.npz"
    np.savez(other, mine=np.arange(3))
    for output, expected in ((kaggle, "is not allowed: a file name ending in .npz"),
                             (other, "exists and is not a packed data set: pass overwrite=true")):
        with pytest.raises(SystemExit) as exit_info:
            run_hydra_entry(pack_main, monkeypatch, f"data.path={kaggle}", f"output={output}")
        assert exit_info.value.code == 2
        assert expected in capsys.readouterr().err
    assert list(np.load(other)) == ["mine"]
    run_hydra_entry(pack_main, monkeypatch, f"data.path={kaggle}", f"output={other}", "overwrite=true")
    assert len(read_rows(other).images) == 9


def test_a_file_that_is_not_a_packed_data_set_is_one_line(kaggle, tmp_path):
    rows = read_rows(kaggle)
    good = tmp_path / "good.npz"
    write_packed(good, rows)
    stored = dict(np.load(good))

    def variant(name: str, base: dict | None = None, **changes) -> str:
        path = tmp_path / f"{name}.npz"
        np.savez(path, **{**(stored if base is None else base), **changes})
        return path

    cases = {
        variant("no_marker", marker=np.array("something else")): "not a packed data set of this project",
        variant("bad_label", labels=np.where(np.arange(9) == 4, 9, stored["labels"])): "row 4 has label 9",
        variant("bad_dtype", labels=stored["labels"].astype(np.float32)): "array labels is float32",
        variant("object", labels=np.array([None] * 9, dtype=object)): "cannot be read as a packed data set",
    }
    webp = tmp_path / "webp.npz"
    write_packed(webp, rows, "webp")
    as_webp = {k: v for k, v in np.load(webp).items()}
    corrupt = as_webp["webp_bytes"].copy()
    corrupt[as_webp["webp_ends"][1]:as_webp["webp_ends"][2]] = 0  # face 2 is no WebP at all
    cases[variant("webp_corrupt", as_webp, webp_bytes=corrupt)] = "row 2: its WebP face does not decode"
    cases[variant("webp_ends", as_webp, webp_ends=as_webp["webp_ends"][::-1].copy())] = "rising ends"
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:200])
    cases[truncated] = "not a packed data set \\(not a .npz archive"
    text = tmp_path / "text.npz"
    text.write_text("emotion,pixels\n")  # numpy would call this pickled data and offer to unpickle it
    cases[text] = "not a packed data set \\(not a .npz archive"
    cases[claiming(tmp_path / "claims.npz", (10**12, 48, 48))] = "images_dx.npy claims 2,304,000,000,000,000 bytes"
    bomb = tmp_path / "bomb.npz"  # 0.5 MB holding 460 MB of zeros
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        array = io.BytesIO()
        np.save(array, np.zeros((200_000, 48, 48), np.uint8))
        archive.writestr("images_dx.npy", array.getvalue())
    cases[bomb] = "images_dx.npy claims 460,800,000 bytes from"
    for path, expected in cases.items():
        with pytest.raises(DataFormatError, match=expected) as error:
            read_rows(path)
        assert str(error.value).startswith(f"{path}: ") and "\n" not in str(error.value)


def claiming(path, shape: tuple[int, ...]):
    """A .npz whose one array's header claims ``shape`` (uint8) and holds nothing."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("images_dx.npy", header.getvalue())  # the magic and header, no data
    return path


def test_data_fer2013_reads_its_packed_file(kaggle, tmp_path):
    """data=fer2013 data.path=<the .npz pack made of Kaggle's CSV>: the same splits as the CSV."""
    from hydra.utils import instantiate

    from tests.conftest import compose_config

    packed = tmp_path / "fer.npz"
    write_packed(packed, read_rows(kaggle), "webp")
    modules = []
    for path in (kaggle, packed):
        module = instantiate(compose_config(["data=fer2013", f"data.path={path}"]).data)
        module.setup()
        modules.append(module)
    for split in ("train", "val", "test"):
        assert np.array_equal(modules[0].splits[split].images, modules[1].splits[split].images), split


def test_a_packed_file_without_labels_cannot_train_and_says_so(kaggle, tmp_path):
    from dataclasses import replace

    from fer_lightning.data.datamodule import FERDataModule

    rows = read_rows(kaggle)
    unlabelled = tmp_path / "unlabelled.npz"
    write_packed(unlabelled, replace(rows, labels=np.full_like(rows.labels, -1)))
    datamodule = FERDataModule(format="auto", path=str(unlabelled), cache_dir=None)
    with pytest.raises(DataFormatError, match="unlabelled.npz: an unlabelled train split; training needs labelled"):
        datamodule.setup("fit")


@pytest.fixture
def read_only_folder(tmp_path):
    from tests.helpers import mounted_tmpfs

    yield from mounted_tmpfs(tmp_path / "ro", "size=1m,ro")


def test_an_output_folder_that_cannot_be_written_is_named_not_the_temporary_file(kaggle, read_only_folder,
                                                                                  monkeypatch, capsys):
    output = read_only_folder / "tiny.npz"
    with pytest.raises(SystemExit) as stopped:
        run_hydra_entry(pack_main, monkeypatch, f"data.path={kaggle}", f"output={output}")
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: {output}: cannot write (Read-only file system)"
