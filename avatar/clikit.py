"""Shared command-line machinery: option groups added to command signatures, one logging setup,
progress bars for avatar.progress events. Used by avatar.cli and the sub-apps (avatar lips, avatar face)."""
from __future__ import annotations

import functools
import inspect
import logging
import sys

import typer

log = logging.getLogger("avatar")


def _opt(name: str, annotation, default) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


VERBOSITY = [
    _opt("verbose", bool, typer.Option(False, "-v", "--verbose", help="More detail; tracebacks on errors.")),
    _opt("quiet", bool, typer.Option(False, "-q", "--quiet", help="Only warnings and errors; no progress bars.")),
]

class Verbosity:
    """The verbosity chosen for this run (set once by the command, read by main's error handler)."""
    verbose = False


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    """One logging setup: the `avatar` logger and Python warnings go to stderr, through rich on a
    terminal and as plain one-line `warning: ...` records elsewhere (logs, CI, pipes: no wrapping)."""
    import warnings

    Verbosity.verbose = verbose
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(console=Console(stderr=True), show_time=False, show_path=False,
                                               markup=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_PlainFormatter())
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)

    def show(message, category, filename, lineno, file=None, line=None):
        log.warning(str(message))

    warnings.showwarning = show


class _PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = " ".join(record.getMessage().split())   # one line
        return text if record.levelno == logging.INFO else f"{record.levelname.lower()}: {text}"


def command(*groups: list[inspect.Parameter], name: str | None = None, parent: typer.Typer):
    """Register fn as a command with the option groups added to its signature.

    fn receives verbosity handled (logging set up) and, when it takes `opts`, the other
    group options as a dict."""
    def deco(fn):
        sig = inspect.signature(fn)
        extra = [p for g in (VERBOSITY, *groups) for p in g]
        own = [p for n, p in sig.parameters.items() if n != "opts"]

        @functools.wraps(fn)
        def wrapper(**kw):
            setup_logging(kw.pop("verbose"), kw.pop("quiet"))
            shared = {p.name: kw.pop(p.name) for p in extra if p.name in kw}
            return fn(**kw, opts=shared) if "opts" in sig.parameters else fn(**kw)

        wrapper.__signature__ = sig.replace(parameters=[*own, *extra])
        wrapper.__annotations__ = {**{k: v for k, v in fn.__annotations__.items() if k != "opts"},
                                   **{p.name: p.annotation for p in extra}}
        return parent.command(name)(wrapper)
    return deco


def _quiet() -> bool:
    return log.getEffectiveLevel() > logging.INFO


def done(message: str) -> None:
    """A command's result line (stdout; not with -q)."""
    if not _quiet():
        typer.echo(message)


class ProgressBars:
    """Draws avatar.progress events as rich progress bars (started at the first event; nothing when quiet).
    check(): called first at every event, quiet or not (the command line raises a signal there
    that a library swallowed)."""

    def __init__(self, check=None):
        self.progress = None
        self.tasks: dict[str, int] = {}
        self.check = check

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def _start(self):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), console=Console(stderr=True), transient=False)
        self.progress.__enter__()

    def __call__(self, event) -> None:
        if self.check is not None:
            self.check()
        if _quiet():
            return
        if self.progress is None:
            self._start()
        name = event.label if event.stage == "frames" else event.stage
        if name not in self.tasks:
            label = f"  {name} frames" if event.stage == "frames" else event.stage
            self.tasks[name] = self.progress.add_task(label, total=event.total)
        desc = f"{event.stage} ({event.label})" if event.stage != "frames" and event.label else None
        self.progress.update(self.tasks[name], completed=event.done, total=event.total,
                             **({"description": desc} if desc else {}))
