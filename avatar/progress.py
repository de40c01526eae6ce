"""Progress events for long work, reported to a callback (the CLI draws them as bars).

    def show(p: Progress): print(p.stage, p.done, p.total)
    avatar.render("talk.yaml", "talk.mp4", on_progress=show)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional


@dataclass(frozen=True)
class Progress:
    stage: str                  # "scenes" (done/total scenes), "frames" (of one scene), "narration"
    done: int
    total: Optional[int] = None
    label: str = ""             # e.g. "scene 3", "2 cached"


ProgressCallback = Callable[[Progress], None]


def report(callback: Optional[ProgressCallback], stage: str, done: int, total: int | None = None,
           label: str = "") -> None:
    if callback is not None:
        callback(Progress(stage, done, total, label))
