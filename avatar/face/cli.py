"""`avatar face ...`: self-reenactment of a real clip (mounted by avatar.cli; light to import)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

face_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                       rich_markup_mode=None, help="Self-reenactment of real footage (renderer checks).")


@face_app.command()
def reenact(
    video: Path = typer.Option(..., "--video", help="Real talking-head clip; its first frame is the photo."),
    out: Path = typer.Option(..., "-o", "--out", help="Output MP4: the clip's size, fps, frame count and audio."),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", min=1, help="Only the clip's first N frames."),
):
    """Render the clip's own per-frame motion (MediaPipe) on its first frame, frame-aligned with the clip."""
    from avatar.face.reenact import reenact as run

    res = run(video, out, max_frames=max_frames)
    note = f", {res.faceless} frame(s) without a face (motion interpolated)" if res.faceless else ""
    typer.echo(f"wrote {res.out}: {res.size[0]}x{res.size[1]}, {res.frames} frames at {res.fps:g} fps{note}")
