"""Where the Hydra configs live, for an editable checkout and for an installed wheel."""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # fer_lightning/


def config_dir() -> str:
    packaged = PACKAGE_DIR / "conf"  # wheels carry conf/ inside the package
    if packaged.is_dir():
        return str(packaged)
    return str(PACKAGE_DIR.parent / "conf")
