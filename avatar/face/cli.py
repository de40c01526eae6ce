"""`avatar face ...`: self-reenactment of a real clip (mounted by avatar.cli; light to import)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from avatar.clikit import command

face_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                       rich_markup_mode=None, help="Self-reenactment of real footage; a presenter's own mouth interiors.")


@command(parent=face_app)
def reenact(
    video: Path = typer.Option(..., "--video", help="Real talking-head clip; its first frame is the photo."),
    out: Path = typer.Option(..., "-o", "--out", help="Output MP4: the clip's size, fps, frame count and audio."),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", min=1, help="Only N frames of the clip."),
    start: int = typer.Option(0, "--start", min=0, help="First frame used (it is the photo)."),
    appearance: Optional[Path] = typer.Option(None, "--appearance",
                                              help="A .face file (`avatar face learn`): real mouth interiors."),
):
    """Render the clip's own per-frame motion (MediaPipe) on its first frame, frame-aligned with the clip."""
    from avatar.face.reenact import reenact as run

    res = run(video, out, max_frames=max_frames, start=start, appearance=appearance)
    note = f", {res.faceless} frame(s) without a face (motion interpolated)" if res.faceless else ""
    typer.echo(f"wrote {res.out}: {res.size[0]}x{res.size[1]}, {res.frames} frames at {res.fps:g} fps{note}")


@command(parent=face_app)
def learn(
    video: Path = typer.Option(..., "--video", help="A recording of the presenter speaking (20-60 s)."),
    out: Path = typer.Option(..., "-o", "--out", help="Appearance file to write (e.g. me.face)."),
    start: int = typer.Option(0, "--start", min=0, help="First frame used."),
    frames: Optional[int] = typer.Option(None, "--frames", min=1, help="Frames used (default: to the end)."),
):
    """Learn the presenter's own mouth interiors (teeth, tongue) by mouth shape from a recording."""
    from avatar.face.appearance import learn as run

    path, n = run(video, out, start=start, frames=frames)
    typer.echo(f"wrote {path}: {n} mouth interiors")
