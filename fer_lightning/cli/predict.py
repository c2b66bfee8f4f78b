"""python -m fer_lightning.predict input=<photo, folder, video or test CSV> [ckpt_path=...] [output=...]:
the expression of every face, with the shipped model unless ckpt_path says otherwise."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from fer_lightning.cli.entry import command, run_command


def predict(cfg: DictConfig) -> None:
    from fer_lightning.inference.prediction import predict  # heavy imports after the command line is read

    result = predict(cfg)
    if result.images is not None:
        show_faces(result.images)
    if result.tracks is not None:
        show_tracks(result.tracks)
        print(f"tracks: {result.track_table}")
        print(f"timeline: {write_timeline(result.output)}")


def show_faces(images) -> None:
    """One line per face: file, face number, box, label and its probability (uncertain ones said so)."""
    from rich.table import Table

    from fer_lightning.terminal import console

    table = Table("file", "face", "box (x, y, w, h)", "label", "probability", box=None, pad_edge=False)
    for image in images:
        if not image.faces:
            table.add_row(image.file, "-", "", f"[dim]{image.note}[/dim]", "")
        for face in image.faces:
            label = f"{face['label']} [yellow](uncertain)[/yellow]" if face["uncertain"] else face["label"]
            table.add_row(image.file, str(face["face"]), " ".join(str(v) for v in face["box"]), label,
                          f"{face['probabilities'][face['label']]:.2f}")
    console().print(table)


def show_tracks(tracks) -> None:
    """One line per face followed through the video."""
    from rich.table import Table

    from fer_lightning.terminal import console

    table = Table("track", "seen (s)", "frames", "label most of the time", "mean probability", box=None,
                  pad_edge=False)
    for track in tracks:
        table.add_row(str(track.track), f"{track.first_time:.2f} - {track.last_time:.2f}", str(track.frames),
                      track.label, f"{track.probabilities[track.label]:.2f}")
    console().print(table)


def write_timeline(table: Path) -> Path:
    """``<table>_timeline.png``: each track's label and its probability over time."""
    from fer_lightning.files import write_bytes
    from fer_lightning.viz.figures import figure_to_png, track_timeline_figure, video_tracks

    tracks, names = video_tracks(table)
    target = table.with_name(f"{table.stem}_timeline.png")
    write_bytes(target, figure_to_png(track_timeline_figure(tracks, names, title=table.stem)))
    return target


@command
def main() -> None:
    run_command("predict", predict, __doc__, main_input="input")


if __name__ == "__main__":
    main()
