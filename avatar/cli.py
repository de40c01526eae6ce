"""The `avatar` command. Thin: parses options, calls the API in avatar.api.

Everything heavy (torch, mediapipe, piper, PyAV) is imported inside the commands,
so `avatar --help` stays instant. Shared option groups (verbosity for every command,
the rendering options of `render` and `demo`) are defined once below and added to each
command's signature by `command()`, so they cannot drift apart.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from avatar import clikit
from avatar.clikit import ProgressBars, Verbosity, _opt, done, log, setup_logging
from avatar.errors import AvatarError, Interrupted
from avatar.face.cli import face_app
from avatar.lips.cli import lips_app

app = typer.Typer(
    name="avatar",
    help="Talking-avatar presentation generator: script + one photo -> narrated explainer video.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
cache_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                        rich_markup_mode=None, help="Show, prune or clear the scene cache.")


# --------------------------------------------------------------------------- shared option groups
_SIZE_HELP = "Video size: 1280x720, 1920x1080, 16:9, 1080p, 9:16, 1:1 ..."
RENDER = [
    _opt("face", Optional[Path], typer.Option(None, help="Presenter photo (overrides the script's).")),
    _opt("size", Optional[str], typer.Option(None, help=_SIZE_HELP)),
    _opt("fps", Optional[int], typer.Option(None, min=1, max=60, help="Frames per second (default: the script's).")),
    _opt("preview", bool, typer.Option(False, help="Fast low-resolution preview (640 px, 15 fps at most).")),
    _opt("jobs", int, typer.Option(0, min=0, max=64, help="Scenes rendered in parallel processes (0: one per core, "
                                                           "as memory allows).")),
    _opt("badge", bool, typer.Option(False, help="Add a visible 'AI-generated' mark.")),
    _opt("loudness", Optional[str], typer.Option(None, help="Integrated loudness of the final mix in LUFS, e.g. -14, "
                                                            "or 'off' (default: the script's, else -16).")),
    _opt("presenter_track", Optional[Path], typer.Option(None, help="Also write every scene's presenter, cut out, "
                                                                    "as one alpha video: presenter.webm or .mov.")),
    _opt("cache", bool, typer.Option(True, help="Reuse verified segments of unchanged scenes from earlier renders.")),
    _opt("cache_dir", Optional[Path], typer.Option(None, help="Scene cache folder (default: $AVATAR_CACHE, else the "
                                                                "user cache folder; see `avatar cache info`).")),
]
CACHE_DIR = [RENDER[-1]]


def command(*groups, name: str | None = None, parent: typer.Typer = app):
    """A command of `avatar` (or of one of its sub-apps), with the option groups added (avatar.clikit)."""
    return clikit.command(*groups, name=name, parent=parent)


# --------------------------------------------------------------------------- version
def _version(value: bool) -> None:
    if value:
        from avatar import __version__

        typer.echo(f"avatar-presenter {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")):
    """Talking-avatar presentation generator: script + one photo -> narrated explainer video."""


# --------------------------------------------------------------------------- check / voices / init
def _load_script(script: Path):
    from avatar.script import load

    return load(script)


@command()
def check(script: Path = typer.Argument(..., help="YAML template, Markdown deck, .pptx/.odp/.ppt deck or plain-text script.")):
    """Validate a script (and plan its scenes) and print a short summary."""
    from avatar.build.plan import plan
    from avatar.script.summary import summarize

    deck = _load_script(script)
    plans = plan(deck)   # what only rendering would find: fonts, themes, PDF pages, photos
    s = summarize(deck)
    typer.echo(f"{script}: OK")
    typer.echo(f"  title     {deck.title}")
    typer.echo(f"  scenes    {s['scenes']} ({s['slides']} with slides)")
    typer.echo(f"  words     {s['words']}")
    typer.echo(f"  duration  ~{s['duration']:.0f} s (estimated)")
    typer.echo(f"  video     {deck.size[0]}x{deck.size[1]} @ {deck.fps} fps, theme {deck.theme.name}, "
               f"avatar {deck.avatar.layout}, voice {deck.voice.preset or deck.voice.engine}")
    for p in plans:
        log.debug(f"scene {p.index + 1}: plan {p.key}, {len(p.inputs)} input files"
                  + (", crossfade from the previous scene" if p.previous else ""))


@command()
def voices():
    """List the voice presets (voices/*.yaml)."""
    from avatar.api import list_voices

    for v in list_voices():
        typer.echo(f"{v.name:16s} {v.description}")


@command()
def init(name: str = typer.Argument(..., help="Base name for the starter files."),
         folder: Path = typer.Option(Path("."), "--dir", help="Where to write them.")):
    """Write a starter YAML presentation and a Markdown deck."""
    from avatar.script.starter import write_starter

    for p in write_starter(name, folder):
        typer.echo(f"wrote {p}")


# --------------------------------------------------------------------------- convert
@command()
def convert(deck: Path = typer.Argument(..., help="PowerPoint or LibreOffice deck: .pptx, .odp or .ppt."),
            out: Path = typer.Option(..., "-o", "--out", help="Output .yaml (the slides go to OUT.slides.pdf)."),
            read_titles: bool = typer.Option(False, help="Slides without speaker notes: read their title."),
            force: bool = typer.Option(False, help="Overwrite OUT.yaml and OUT.slides.pdf if they exist.")):
    """Convert a deck into an editable YAML presentation (LibreOffice renders the slides)."""
    from avatar.script.deck import DECK_SUFFIXES, convert_deck

    if deck.suffix.lower() not in DECK_SUFFIXES:
        raise AvatarError(f"{deck}: convert reads a deck ({', '.join(DECK_SUFFIXES)})",
                          hint="YAML, Markdown and text scripts render as they are: avatar render SCRIPT")
    yaml_path, pdf_path = convert_deck(deck, out, read_titles=read_titles, force=force)
    done(f"wrote {yaml_path} and {pdf_path}; render it with: avatar render {yaml_path} -o "
         f"{yaml_path.with_suffix('.mp4')}")


# --------------------------------------------------------------------------- speak
@command()
def speak(script: str = typer.Argument(..., help="A script file, or the text to speak."),
          out: Path = typer.Option(..., "-o", "--out", help="Output .wav (also writes .srt, .vtt, .timings.json)."),
          voice: Optional[str] = typer.Option(None, help="Voice preset name or YAML file (see `avatar voices`).")):
    """Narrate a script: OUT.wav, OUT.srt, OUT.vtt and OUT.timings.json."""
    from avatar.api import speak as run

    with ProgressBars(_raise_swallowed_signal) as bars:
        speech = run(script, out, voice=voice, on_progress=bars)
    done(f"wrote {out} ({speech.duration:.1f} s, {len(speech.words)} words) and its .srt, .vtt, .timings.json")


# --------------------------------------------------------------------------- say
@command()
def say(text: Optional[str] = typer.Argument(None, help="What the presenter says (or use --audio)."),
        face: Optional[Path] = typer.Option(None, help="Presenter photo (default: the bundled astronaut photo)."),
        out: Path = typer.Option(..., "-o", "--out", help="Output .mp4 (.webm/.mov with --transparent; also "
                                                          "writes .srt and .vtt)."),
        audio: Optional[Path] = typer.Option(None, help="Recorded narration instead of TTS (wav/mp3/flac/m4a)."),
        transcript: Optional[str] = typer.Option(None, help="Transcript of --audio, for captions."),
        voice: Optional[str] = typer.Option(None, help="Voice preset (see `avatar voices`)."),
        fps: int = typer.Option(25, min=1, max=60),
        size: Optional[int] = typer.Option(None, help="Longest side of the output in pixels, at most 4096 (default: the photo's, at most 1920)."),
        crop: bool = typer.Option(False, help="Output only the face crop instead of the whole photo."),
        still: bool = typer.Option(False, help="No head motion."),
        seed: int = typer.Option(0, help="Seed for blinks and head motion."),
        expression_scale: float = typer.Option(1.0, min=0, max=3, help="Scale of head motion and brows."),
        motion: Optional[str] = typer.Option(None, help="auto | phonemes | audio | hybrid (default: auto)."),
        lips_model: Optional[Path] = typer.Option(None, help="Audio-to-lips checkpoint (default: the bundled one)."),
        appearance: Optional[Path] = typer.Option(None, help="The presenter's own mouth interiors (from `avatar face "
                                                               "learn`)."),
        renderer: str = typer.Option("warp", help="warp (CPU) | diffusion (GPU, needs weights)."),
        allow_cpu: bool = typer.Option(False, help="Let the diffusion renderer run on the CPU (slow)."),
        face_index: int = typer.Option(0, help="Which face when the photo shows several (0 = largest)."),
        transparent: bool = typer.Option(False, help="Cut the person out on a transparent background: "
                                                     "-o clip.webm (VP9 + alpha) or clip.mov (ProRes 4444)."),
        loudness: Optional[str] = typer.Option(None, help="Integrated loudness of the clip in LUFS, e.g. -14, "
                                                          "or 'off' for the speech as it is (default: -16).")):
    """Make one talking-head clip from text (or recorded audio) and a photo."""
    from avatar.api import say as run

    with ProgressBars(_raise_swallowed_signal) as bars:
        result = run(text, face=face, out=out, audio=audio, transcript=transcript, voice=voice, fps=fps,
                     transparent=transparent,
                     size=size, crop=crop, still=still, seed=seed, expression_scale=expression_scale,
                     motion=motion, renderer=renderer, allow_cpu=allow_cpu, face_index=face_index,
                     lips_model=lips_model, appearance=appearance, on_progress=bars, loudness=loudness)
    done(result.summary())


# --------------------------------------------------------------------------- render / demo
def _render(script_or_deck, out: Path, opts: dict) -> None:
    from avatar.api import render as run

    opts = {**opts, "jobs": opts["jobs"] or None}
    with ProgressBars(_raise_swallowed_signal) as bars:
        result = run(script_or_deck, out, on_progress=bars, **opts)
    done(result.summary())


@command(RENDER)
def render(script: Path = typer.Argument(..., help="YAML template, Markdown deck, .pptx/.odp/.ppt deck or plain-text script."),
           out: Path = typer.Option(..., "-o", "--out", help="Output .mp4 (also writes .srt and .vtt)."),
           opts: dict = None):
    """Render a presentation to a video: the main job."""
    _render(_load_script(script), out, opts)


@command(RENDER)
def demo(out: Path = typer.Option(Path("demo.mp4"), "-o", "--out", help="Output .mp4."), opts: dict = None):
    """Render the built-in demo presentation (no input needed)."""
    from avatar.resources import templates_dir

    _render(_load_script(templates_dir() / "demo.yaml"), out, opts)


# --------------------------------------------------------------------------- batch
BATCH = [p for p in RENDER if p.name not in ("face", "presenter_track")]   # photos come from the template and rows


@command(BATCH)
def batch(template: Path = typer.Argument(..., help="YAML template with {{column}} placeholders."),
          rows: Path = typer.Argument(..., help="Rows: .csv/.tsv (a header row naming the columns) or .jsonl."),
          out: Path = typer.Option(..., "-o", "--out", help="Output folder: one .mp4 (+ .srt, .vtt) per row and "
                                                         "report.csv."),
          name: Optional[str] = typer.Option(None, help='Output file names, e.g. "{{company}}-{{name}}" '
                                                        "(default: the row number)."),
          optional: list[str] = typer.Option([], "--optional", metavar="COLUMN", help="A column that may be empty "
                                                                                   "(repeatable)."),
          check: bool = typer.Option(False, help="Validate and plan every row; render nothing."),
          use_ray: bool = typer.Option(False, "--ray", help="Run the scenes as Ray tasks (extra [cluster]); a local "
                                                            "Ray with --jobs CPUs unless --ray-address."),
          ray_address: Optional[str] = typer.Option(None, help="An existing Ray cluster (implies --ray); the cache "
                                                               "folder, OUTDIR and inputs must be on shared storage."),
          opts: dict = None):
    """Personalised videos in bulk: one video per row, shared scenes rendered once."""
    from avatar.api import batch as run
    from avatar.build.batch import BatchInvalid

    executor = "ray" if use_ray or ray_address else "local"
    opts = {**opts, "jobs": opts["jobs"] or None}
    try:
        with ProgressBars(_raise_swallowed_signal) as bars:
            result = run(template, rows, out, name=name, optional=optional, check=check, executor=executor,
                         ray_address=ray_address, on_progress=bars, **opts)
    except BatchInvalid as e:
        for problem in e.problems:   # one line each (not through the log handler, which wraps lines)
            typer.echo(f"error: {problem}", err=True)
        raise AvatarError(f"{len(e.problems)} problem(s) in {rows} or {template}: nothing was rendered") from None
    if check:
        typer.echo(f"{rows}: OK, {len(result)} row(s)")
    done(result.summary())
    for r in result.failed:
        typer.echo(f"failed: row {r.row}: {r.error}", err=True)
    if result.failed:
        raise typer.Exit(1)


# --------------------------------------------------------------------------- cache
def _cache(opts: dict):
    from avatar.build.cache import SceneCache, cache_root

    return SceneCache(cache_root(opts.get("cache_dir")))


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


@command(CACHE_DIR, name="info", parent=cache_app)
def cache_info(opts: dict = None):
    """Where the scene cache is, its size and its number of segments."""
    info = _cache(opts).info()
    typer.echo(f"location  {info.root}")
    typer.echo(f"segments  {info.segments}")
    typer.echo(f"size      {_mb(info.bytes)}")


@command(CACHE_DIR, name="prune", parent=cache_app)
def cache_prune(max_size: Optional[str] = typer.Option(None, help="Keep at most this much, e.g. 2GB (least "
                                                                  "recently used scenes go first)."),
                older_than: Optional[str] = typer.Option(None, help="Remove scenes unused for this long, e.g. 30d, 12h."),
                opts: dict = None):
    """Remove scenes unused for a while, or the least recently used ones beyond a size."""
    from avatar.build.cache import parse_age, parse_size

    if max_size is None and older_than is None:
        raise AvatarError("nothing to prune by", hint="give --max-size (e.g. 2GB) and/or --older-than (e.g. 30d)")
    n, freed = _cache(opts).prune(parse_size(max_size) if max_size else None,
                                  parse_age(older_than) if older_than else None)
    typer.echo(f"removed {n} scene(s), freed {_mb(freed)}")


@command(CACHE_DIR, name="clear", parent=cache_app)
def cache_clear(opts: dict = None):
    """Remove the whole scene cache."""
    n, freed = _cache(opts).clear()
    typer.echo(f"removed {n} scene(s), freed {_mb(freed)}")


app.add_typer(cache_app, name="cache")
app.add_typer(face_app, name="face")   # `avatar face reenact|learn` (avatar.face.cli; light to import)
app.add_typer(lips_app, name="lips")   # `avatar lips train|eval` (avatar.lips.cli; light to import)


def _on_signal(signum, frame) -> None:
    """SIGTERM / SIGHUP / SIGINT: unwind like Ctrl-C (temporary files are removed on the way).
    A second signal while cleaning up ends the process at once. One that lands while a module
    is imported is sent again 50 ms later, until it lands outside imports (for at most
    DEFER_SECONDS: the command may itself run inside an import): an extension module's import
    (numpy's import_array) prints the traceback of an exception raised inside it before
    failing, so the command printed a traceback with its one-line message."""
    import os
    import signal
    import threading
    import time

    f = frame
    while f is not None:
        if f.f_code.co_filename.startswith("<frozen importlib"):
            first = _deferred.setdefault(signum, time.monotonic())
            if time.monotonic() - first < DEFER_SECONDS:
                t = threading.Timer(0.05, os.kill, (os.getpid(), signum))
                t.daemon = True
                t.start()
                return
            break
        f = f.f_back
    for s in _SIGNALS:
        signal.signal(s, signal.SIG_DFL)
    _interrupted.append(signum)
    raise Interrupted(signum)


_SIGNALS: list = []
_interrupted: list = []   # signal numbers received, then "reported" once the line is printed
_deferred: dict = {}      # signal number -> when it first landed inside an import (see _on_signal)
DEFER_SECONDS = 3.0


def _raise_swallowed_signal() -> None:
    """At every progress event (a frame written, a scene done): a signal received earlier whose
    Interrupted a library swallowed is raised again, in the main thread. PyAV's error check lets
    an exception raised inside it go (a signal landing while an audio frame was encoded): the run
    then went on, wrote its output and still said that none was written."""
    import threading

    if _interrupted and _interrupted[-1] != "reported" and threading.current_thread() is threading.main_thread():
        raise Interrupted(_interrupted[0])


def _install_signal_handlers() -> dict:
    """Route SIGINT/SIGTERM/SIGHUP to _on_signal; returns the previous handlers."""
    import signal

    _SIGNALS[:] = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    old = {s: signal.getsignal(s) for s in _SIGNALS}
    for s in _SIGNALS:
        if old[s] is not signal.SIG_IGN:   # keep `nohup`'s ignored SIGHUP ignored
            signal.signal(s, _on_signal)
    return old


def _fail(message: str, code: int) -> None:
    if Verbosity.verbose:
        import traceback

        traceback.print_exc()
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def _stop(signum: int) -> None:
    import signal

    if _interrupted[-1:] == ["reported"]:
        sys.exit(128 + signum)
    _interrupted.append("reported")
    name = signal.Signals(signum).name
    print("interrupted" + (f" ({name})" if signum != signal.SIGINT else "") + ": no new output was written",
          file=sys.stderr)
    from avatar.files import remove_pending

    remove_pending()   # a signal that landed as a temporary file was being opened skipped its clean-up
    _exit_now_if_helpers_run(128 + signum)
    sys.exit(128 + signum)


def _exit_now_if_helpers_run(code: int) -> None:
    """End at once when a daemon helper is still working (a narration synthesised ahead, in
    onnxruntime's native code): finalising the interpreter under it aborted the process
    ("terminate called without an active exception", or a segfault) instead of exiting with
    `code`. Everything to clean up is done by now: temporary files are removed, the line printed."""
    import os
    import threading

    run = sys.modules.get("avatar.build.run")   # not imported: no render ran, so no such helper
    if run and any(t.daemon and t.is_alive() and t.name == run.NARRATION_THREAD for t in threading.enumerate()):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main(argv: list[str] | None = None) -> None:
    """The command line. The one place where errors become one-line messages (exit 2): input
    errors (AvatarError) and operating-system errors (disk full, permissions, a folder where a
    file should be ...); signals end the run as Ctrl-C does (exit 128 + signal number)."""
    import os
    import signal
    import threading

    # numpy's OpenBLAS threads spin in sched_yield between the small per-frame linear algebra
    # calls (a quarter of a 2-core render went there, as system time); one thread computes the
    # same numbers. Set before numpy loads (nothing imports it before this); the caller's value wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from avatar.build.memory import keep_freed_memory

    keep_freed_memory()   # this process renders (serially, or the assembly): avatar.build.memory
    setup_logging()
    old = _install_signal_handlers() if threading.current_thread() is threading.main_thread() else {}
    _interrupted.clear()
    try:
        try:
            app(args=argv, prog_name="avatar", standalone_mode=True)
        except Exception:
            if _interrupted:   # a library turned the signal into its own error (onnxruntime: "initialization failed")
                _stop(_interrupted[0])
            raise
    except AvatarError as e:
        _fail(str(e), e.exit_code)
    except OSError as e:
        from avatar.errors import os_error_message

        _fail(os_error_message(e), 2)
    except KeyboardInterrupt as e:   # raised outside the command (typer turns it into exit 130 inside)
        _stop(getattr(e, "signum", None) or (_interrupted or [2])[0])
    except SystemExit as e:
        if _interrupted or e.code == 130:
            _stop((_interrupted or [2])[0])
        raise
    finally:
        for s, handler in old.items():   # main() called in-process (tests) leaves the handlers as they were
            signal.signal(s, handler)


if __name__ == "__main__":  # python -m avatar.cli
    main()
