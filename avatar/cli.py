"""The `avatar` command. Thin: parses options, calls the API in avatar.pipeline.

Everything heavy (torch, mediapipe, piper, PyAV) is imported inside the commands,
so `avatar --help` stays instant.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from avatar.errors import AvatarError
from avatar.lips.cli import lips_app

app = typer.Typer(
    name="avatar",
    help="Talking-avatar presentation generator: script + one photo -> narrated explainer video.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _console():
    from rich.console import Console

    return Console(stderr=True)


def _load_script(script: Path):
    """Load a YAML template, Markdown deck or plain-text script."""
    from avatar.script import load

    return load(script)


# --------------------------------------------------------------------------- check / voices / init
@app.command()
def check(script: Path = typer.Argument(..., help="YAML template, Markdown deck or plain-text script.")):
    """Validate a script and print a short summary."""
    from avatar.pipeline import preflight, summarize

    deck = _load_script(script)
    preflight(deck)   # what only rendering would find: fonts, themes, PDF pages, photos
    s = summarize(deck)
    typer.echo(f"{script}: OK")
    typer.echo(f"  title     {deck.title}")
    typer.echo(f"  scenes    {s['scenes']} ({s['slides']} with slides)")
    typer.echo(f"  words     {s['words']}")
    typer.echo(f"  duration  ~{s['duration']:.0f} s (estimated)")
    typer.echo(f"  video     {deck.size[0]}x{deck.size[1]} @ {deck.fps} fps, theme {deck.theme.name}, "
               f"avatar {deck.avatar.layout}, voice {deck.voice.preset or deck.voice.engine}")


@app.command()
def voices():
    """List the voice presets (voices/*.yaml)."""
    from avatar.speech.presets import list_presets

    for name, description, path in list_presets():
        typer.echo(f"{name:16s} {description}")


@app.command()
def init(name: str = typer.Argument(..., help="Base name for the starter files."),
         folder: Path = typer.Option(Path("."), "--dir", help="Where to write them.")):
    """Write a starter YAML presentation and a Markdown deck."""
    from avatar.script.starter import write_starter

    for p in write_starter(name, folder):
        typer.echo(f"wrote {p}")


# --------------------------------------------------------------------------- speak
@app.command()
def speak(script: str = typer.Argument(..., help="A script file, or the text to speak."),
          out: Path = typer.Option(..., "-o", "--out", help="Output .wav (also writes .srt, .vtt, .timings.json)."),
          voice: Optional[str] = typer.Option(None, help="Voice preset name or YAML file (see `avatar voices`).")):
    """Narrate a script: OUT.wav, OUT.srt, OUT.vtt and OUT.timings.json."""
    from avatar.pipeline import speak as run

    speech = run(script, out, voice=voice, console=_console())
    typer.echo(f"wrote {out} ({speech.duration:.1f} s, {len(speech.words)} words) and its .srt, .vtt, .timings.json")


# --------------------------------------------------------------------------- say
@app.command()
def say(text: Optional[str] = typer.Argument(None, help="What the presenter says (or use --audio)."),
        face: Optional[Path] = typer.Option(None, help="Presenter photo (default: the bundled astronaut photo)."),
        out: Path = typer.Option(..., "-o", "--out", help="Output .mp4 (also writes .srt and .vtt)."),
        audio: Optional[Path] = typer.Option(None, help="Recorded narration instead of TTS (wav/mp3/flac/m4a)."),
        transcript: Optional[str] = typer.Option(None, help="Transcript of --audio, for captions."),
        voice: Optional[str] = typer.Option(None, help="Voice preset (see `avatar voices`)."),
        fps: int = typer.Option(25, min=1, max=60),
        size: Optional[int] = typer.Option(None, help="Longest side of the output in pixels (default: the photo's)."),
        crop: bool = typer.Option(False, help="Output only the face crop instead of the whole photo."),
        still: bool = typer.Option(False, help="No head motion."),
        seed: int = typer.Option(0, help="Seed for blinks and head motion."),
        expression_scale: float = typer.Option(1.0, min=0, max=3, help="Scale of head motion and brows."),
        motion: Optional[str] = typer.Option(None, help="auto | phonemes | audio | hybrid (default: auto)."),
        renderer: str = typer.Option("warp", help="warp (CPU) | diffusion (GPU, needs weights)."),
        allow_cpu: bool = typer.Option(False, help="Let the diffusion renderer run on the CPU (slow)."),
        face_index: int = typer.Option(0, help="Which face when the photo shows several (0 = largest).")):
    """Make one talking-head clip from text (or recorded audio) and a photo."""
    from avatar.pipeline import say as run

    result = run(text, face=face, out=out, audio=audio, transcript=transcript, voice=voice, fps=fps,
                 size=size, crop=crop, still=still, seed=seed, expression_scale=expression_scale,
                 motion=motion, renderer=renderer, allow_cpu=allow_cpu, face_index=face_index,
                 console=_console())
    typer.echo(result.summary())


# --------------------------------------------------------------------------- render / demo
def _render(script_or_deck, out: Path, **kw):
    from avatar.pipeline import render as run

    result = run(script_or_deck, out, console=_console(), **kw)
    typer.echo(result.summary())


_SIZE_HELP = "Video size: 1280x720, 1920x1080, 16:9, 1080p, 9:16, 1:1 ..."


@app.command()
def render(script: Path = typer.Argument(..., help="YAML template, Markdown deck or plain-text script."),
           out: Path = typer.Option(..., "-o", "--out", help="Output .mp4 (also writes .srt and .vtt)."),
           face: Optional[Path] = typer.Option(None, help="Presenter photo (overrides the script's)."),
           size: Optional[str] = typer.Option(None, help=_SIZE_HELP),
           fps: Optional[int] = typer.Option(None, min=1, max=60),
           preview: bool = typer.Option(False, help="Fast low-resolution preview."),
           jobs: int = typer.Option(1, min=1, max=16, help="Scenes rendered in parallel processes."),
           badge: bool = typer.Option(False, help="Add a visible 'AI-generated' mark."),
           cache: bool = typer.Option(True, help="Reuse unchanged scenes from earlier renders."),
           cache_dir: Optional[Path] = typer.Option(None, help="Scene cache folder (default ~/.cache/avatar).")):
    """Render a presentation to a video: the main job."""
    deck = _load_script(script)
    _render(deck, out, face=face, size=size, fps=fps, preview=preview, jobs=jobs, badge=badge,
            cache=cache, cache_dir=cache_dir)


@app.command()
def demo(out: Path = typer.Option(Path("demo.mp4"), "-o", "--out", help="Output .mp4."),
         size: Optional[str] = typer.Option(None, help=_SIZE_HELP),
         preview: bool = typer.Option(False, help="Fast low-resolution preview."),
         jobs: int = typer.Option(1, min=1, max=16, help="Scenes rendered in parallel processes."),
         badge: bool = typer.Option(False, help="Add a visible 'AI-generated' mark.")):
    """Render the built-in demo presentation (no input needed)."""
    from avatar.resources import templates_dir

    deck = _load_script(templates_dir() / "demo.yaml")
    _render(deck, out, size=size, preview=preview, jobs=jobs, badge=badge)


app.add_typer(lips_app, name="lips")   # `avatar lips train|evaluate` (avatar.lips.cli; light to import)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings (several faces, text that does not fit, no transcript...) as one plain line."""
    print(f"warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    import os
    import warnings

    # numpy's OpenBLAS threads spin in sched_yield between the small per-frame linear algebra
    # calls (a quarter of a 2-core render went there, as system time); one thread computes the
    # same numbers. Set before numpy loads (nothing imports it before this); the caller's value wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    warnings.showwarning = _show_warning
    try:
        app(args=argv, prog_name="avatar")
    except AvatarError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        print("interrupted: no output was written", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":  # python -m avatar.cli
    main()
