"""Every setting with a fixed set of values, declared once: the code that acts on a setting and
the checks that refuse a wrong value before any work starts both read them from here."""

DATA_SOURCES = ("synthetic", "file")
DATA_FORMATS = ("auto", "kaggle_csv", "homework_csv", "image_folder")
ON_BAD_ROWS = ("raise", "skip")
SAMPLERS = (None, "none", "balanced")
MIXING_MODES = ("mixup", "cutmix")
SCHEDULER_INTERVALS = ("step", "epoch")
PRECISIONS = ("32-true", "32", "16-mixed", "bf16-mixed", "bf16-true", "16-true", "64-true")


def allowed(values: tuple) -> str:
    """``a, b or c`` (``null`` for None), for one-line error messages."""
    names = ["null" if value is None else str(value) for value in values if value != "none"]
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
