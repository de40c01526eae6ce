"""Chapters: each scene's slide title becomes a chapter of the video (MP4 + WebVTT chapters).

    chs = scene_chapters(deck, durations)       # [Cue(start, end, (title,))]
    concat_mp4(..., chapters=to_pyav(chs)); write_vtt(OUT.chapters.vtt, chs)

A scene with a slide title starts a chapter; consecutive scenes with the same title and
scenes without one belong to the chapter before them (the first chapter, when the video
opens with untitled scenes, is named after the presentation's title). Players show the
MP4 chapters (QuickTime chapter track + Nero chpl atom, what FFmpeg's mov muxer writes) as
the outline; the .chapters.vtt is for the web (<track kind="chapters">).
"""
from __future__ import annotations

from fractions import Fraction

from avatar.types import Cue

TIME_BASE = Fraction(1, 1000)


def scene_chapters(deck, durations: list[float]) -> list[Cue]:
    """Chapters of `deck` whose scenes last `durations` seconds (in order)."""
    out: list[Cue] = []
    t = 0.0
    for scene, d in zip(deck.scenes, durations):
        title = " ".join((scene.slide.title or "").split()) if scene.slide is not None else ""
        if title and (not out or out[-1].lines[0] != title):
            out.append(Cue(t, t + d, (title,)))
        elif out:
            out[-1] = Cue(out[-1].start, t + d, out[-1].lines)
        else:
            out.append(Cue(t, t + d, (deck.title,)))
        t += d
    return out


def to_pyav(chapters: list[Cue]) -> list[dict]:
    """The chapter dicts PyAV's Container.set_chapters takes (milliseconds)."""
    return [{"id": i + 1, "start": round(c.start * 1000), "end": round(c.end * 1000), "time_base": TIME_BASE,
             "metadata": {"title": c.lines[0]}} for i, c in enumerate(chapters)]
