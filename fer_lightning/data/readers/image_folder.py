"""Image folders: ``<root>/<split>/<class>/*.png`` or, all training data, ``<root>/<class>/*.png``.

Split folders are train, val (or valid, validation) and test; class folders are the class names
(any case) or their indices 0..6. A split folder (or the root) holding images but no class
folders is an unlabelled set; an unlabelled root is the "test" split, like the homework test.csv.
Images may have any size, depth and channel count: each is read with OpenCV and turned into
48x48 grayscale.
"""

from __future__ import annotations

from pathlib import Path

from fer_lightning.classes import CLASS_NAMES, NUM_CLASSES
from fer_lightning.data.readers.image_decode import (
    IMAGE_EXTENSIONS,
    ImageDecodeError,
    decode_face,
    quiet_opencv,
)
from fer_lightning.data.readers.problems import ProblemLog
from fer_lightning.data.readers.table import NO_LABEL, SPLITS, ParsedRows, RowsBuilder
from fer_lightning.errors import DataFormatError

SPLIT_FOLDERS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
# Files and folders that operating systems and archivers leave behind; they are never data.
IGNORED_NAMES = {"thumbs.db", "desktop.ini", "__macosx"}
LAYOUT = "<folder>/<split>/<class>/<image> (split: train, val, test) or <folder>/<class>/<image>"
_CLASS_CHOICES = f"one of {', '.join(CLASS_NAMES)} or 0..{NUM_CLASSES - 1}"
_EXTENSIONS = ", ".join(IMAGE_EXTENSIONS)

Entry = tuple[Path, int]  # image file, label (NO_LABEL when unlabelled)


def class_of_folder(name: str) -> int | None:
    """The class index a folder name stands for, or None."""
    if name.lower() in CLASS_NAMES:
        return CLASS_NAMES.index(name.lower())
    if name.isdigit() and len(name) == 1 and int(name) < NUM_CLASSES:
        return int(name)
    return None


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def _listing(folder: Path) -> tuple[list[Path], list[Path]]:
    """(sub-folders, files) of ``folder``, sorted, without hidden and system files."""
    try:
        children = sorted(child for child in folder.iterdir()
                          if not child.name.startswith(".") and child.name.lower() not in IGNORED_NAMES)
    except OSError as exc:
        raise DataFormatError(f"{folder}: cannot list the folder: {exc.strerror or exc}") from exc
    folders = [child for child in children if child.is_dir()]
    return folders, [child for child in children if not child.is_dir()]


class _FolderScanner:
    """Walks the layout, collecting (image, label) entries per split and reporting what does not fit."""

    def __init__(self, root: Path, problems: ProblemLog) -> None:
        self.root = root
        self.problems = problems

    def relative(self, path: Path) -> str:
        relative = path.relative_to(self.root).as_posix()
        return "the top-level folder" if relative == "." else relative

    def scan(self) -> list[tuple[int, list[Entry]]]:
        folders, files = _listing(self.root)
        split_folders: dict[str, Path] = {}
        class_folders, other_folders = [], []
        for folder in folders:
            split = SPLIT_FOLDERS.get(folder.name.lower())
            if split is None:
                (class_folders if class_of_folder(folder.name) is not None else other_folders).append(folder)
            elif split in split_folders:
                raise DataFormatError(f"{self.root}: both {split_folders[split].name!r} and {folder.name!r} "
                                      f"are {split} folders; keep one")
            else:
                split_folders[split] = folder
        if split_folders and class_folders:
            raise DataFormatError(f"{self.root}: mixes split folders ({', '.join(sorted(split_folders))}) with "
                                  f"class folders ({', '.join(f.name for f in class_folders)}); expected {LAYOUT}")
        if split_folders:
            for folder in other_folders:
                self.problems.add(self.relative(folder), "unknown folder: expected a split folder "
                                  "train, val (or valid, validation) or test")
            for file in filter(_is_image, files):
                self.problems.add(self.relative(file), "image outside the split and class folders")
            return [(SPLITS.index(split), self.scan_split(split_folders[split]))
                    for split in SPLITS if split in split_folders]
        if not class_folders and not any(map(_is_image, files)):
            found = f"; found the folders {', '.join(f.name for f in other_folders)}" if other_folders else ""
            raise DataFormatError(f"{self.root}: no images in a known layout; expected {LAYOUT} "
                                  f"with class folders {_CLASS_CHOICES}{found}")
        split = "train" if class_folders else "test"
        return [(SPLITS.index(split), self.scan_split(self.root))]

    def scan_split(self, folder: Path) -> list[Entry]:
        folders, files = _listing(folder)
        images = [file for file in files if _is_image(file)]
        labelled = any(class_of_folder(sub.name) is not None for sub in folders)
        by_class: dict[int, Path] = {}
        for sub in folders:
            label = class_of_folder(sub.name)
            if label is None:
                what = "unknown class folder" if labelled or not images else "unexpected folder in an unlabelled split"
                self.problems.add(self.relative(sub), f"{what}: expected class folders {_CLASS_CHOICES}")
            elif label in by_class:
                raise DataFormatError(f"{folder}: the folders {by_class[label].name!r} and {sub.name!r} both hold "
                                      f"class {CLASS_NAMES[label]!r}; merge them")
            else:
                by_class[label] = sub
        if not by_class:
            if images:
                return [(image, NO_LABEL) for image in images]  # no class folders: unlabelled images
            if not folders:
                self.problems.add(self.relative(folder), "empty split folder: no class folders and no images")
            return []
        for image in images:
            self.problems.add(self.relative(image), "image outside a class folder")
        return [entry for label in sorted(by_class) for entry in self.scan_class(by_class[label], label)]

    def scan_class(self, folder: Path, label: int) -> list[Entry]:
        folders, files = _listing(folder)
        for sub in folders:
            self.problems.add(self.relative(sub), "nested folder: images must sit directly in the class folder")
        entries = []
        for file in files:
            if _is_image(file):
                entries.append((file, label))
            else:
                self.problems.add(self.relative(file), f"not an image file (expected {_EXTENSIONS})")
        if not entries:
            # An empty class usually means a failed copy; training on without it would give a
            # model that can never predict that class.
            self.problems.add(self.relative(folder), "empty class folder: no images")
        return entries


def read_image_folder(root: Path, on_bad_rows: str) -> ParsedRows:
    problems = ProblemLog(str(root), noun="problem")
    scanner = _FolderScanner(root, problems)
    plan = scanner.scan()
    rows = RowsBuilder(str(root), with_names=True)
    file_id = 0
    with quiet_opencv():
        for split, entries in plan:
            # Ids count every listed image, decodable or not, like row positions in a CSV.
            for split_id, (path, label) in enumerate(entries):
                name = scanner.relative(path)
                try:
                    image = decode_face(path.read_bytes(), path.suffix)
                except ImageDecodeError as exc:
                    problems.add(name, str(exc))
                except OSError as exc:
                    problems.add(name, f"cannot read the file: {exc.strerror or exc}")
                else:
                    rows.add(image, label, split, split_id, file_id, name)
                file_id += 1
    problems.settle(on_bad_rows)
    return rows.build(skipped=problems.count)
