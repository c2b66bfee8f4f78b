"""python -m fer_lightning.pack data.path=<csv, folder or file> [output=<file>.npz]: the data set as
one compressed file of uint8 faces, labels and splits."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from fer_lightning.cli.entry import command, run_command


def packed_name(source: Path) -> Path:
    name = source.name
    for suffix in (".gz", ".csv"):
        name = name.removesuffix(suffix)
    return source.with_name(f"{name}.npz")


def pack(cfg: DictConfig) -> Path:
    import time

    from fer_lightning.config.checks import check_pack_config
    from fer_lightning.data.readers.api import read_rows
    from fer_lightning.data.readers.packed import has_marker, write_packed
    from fer_lightning.files import check_output

    check_pack_config(cfg)
    source = Path(cfg.data.path)
    output = Path(cfg.output) if cfg.output else packed_name(source)

    check_output(output, [("the data it packs", source)], has_marker, bool(cfg.overwrite), kind="a packed data set")
    started = time.perf_counter()
    rows = read_rows(source, str(cfg.data.format), str(cfg.data.on_bad_rows))
    output.parent.mkdir(parents=True, exist_ok=True)
    write_packed(output, rows, str(cfg.get("encoding", "rowdiff")))
    counts = ", ".join(f"{split} {count}" for split, count in rows.split_counts().items())
    print(f"packed {len(rows.images)} faces ({counts}) in {time.perf_counter() - started:.1f} s -> {output} "
          f"({output.stat().st_size / 2**20:.1f} MiB)")
    return output


@command
def main() -> None:
    run_command("pack", pack, __doc__, main_input="data.path")


if __name__ == "__main__":
    main()
