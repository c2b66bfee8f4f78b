"""Where the Hydra configs live (an editable checkout or an installed wheel), and where every command
writes by default."""

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # fer_lightning/


def config_dir() -> str:
    packaged = PACKAGE_DIR / "conf"  # wheels carry conf/ inside the package
    if packaged.is_dir():
        return str(packaged)
    return str(PACKAGE_DIR.parent / "conf")


def project_root() -> str:
    """The checkout that holds the package (editable install), else the working directory."""
    checkout = PACKAGE_DIR.parent
    if (checkout / "pyproject.toml").is_file():
        return str(checkout)
    return str(Path.cwd())


# Set by the test suite (and by users who keep outputs elsewhere): the folder that holds runs/,
# multiruns/, cache/ and pretrained/ results instead of <project>/outputs.
OUTPUTS_VARIABLE = "FER_OUTPUTS"


def outputs_dir() -> str:
    """The default folder of everything the commands write: $FER_OUTPUTS, else <project>/outputs."""
    return os.environ.get(OUTPUTS_VARIABLE) or str(Path(project_root()) / "outputs")
