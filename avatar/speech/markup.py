"""Inline narration markup.

    Welcome. [pause 0.8s] Here is the plan. [next] First point ...

- ``[pause 0.8s]`` / ``[pause 500ms]`` / ``[pause 1]`` (seconds): real silence in the audio.
- ``[next]``: a marker (reveals the next bullet when the narration reaches it).

``parse`` returns a list of segments: ``str`` (text to speak), ``Pause`` or ``Marker``.
Anything else in square brackets is an error that says how to write it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_TAG = re.compile(r"\[([^\[\]]*)\]")
_PAUSE = re.compile(r"pause\s+(\d+(?:\.\d+)?|\.\d+)\s*(ms|s)?", re.I)
MAX_PAUSE = 30.0


@dataclass(frozen=True)
class Pause:
    seconds: float


@dataclass(frozen=True)
class Marker:
    name: str


Segment = str | Pause | Marker


class MarkupError(ValueError):
    """Bad markup; the message says what was found and how to write it. `fragment`: the
    offending text as written (to find its line in the file)."""

    def __init__(self, message: str, fragment: str | None = None):
        super().__init__(message)
        self.fragment = fragment


def _unbalanced(text: str) -> None:
    """A '[' with no ']' (or a ']' with no '[') outside the tags: an error, never spoken."""
    depth, start = 0, 0
    for i, c in enumerate(text):
        if c == "[":
            if depth:
                break
            depth, start = 1, i
        elif c == "]":
            if not depth:
                raise MarkupError("a ']' without its '[': write markup as [pause 0.5s] or [next]",
                                  text[max(0, i - 20):i + 1].strip())
            depth = 0
    else:
        if not depth:
            return
    frag = text[start:start + 30].split("\n")[0].strip()
    raise MarkupError(f"unclosed '{frag}': close it with ']', e.g. [pause 1s]", frag)


def parse(narration: str) -> list[Segment]:
    out: list[Segment] = []
    pos = 0
    _unbalanced(narration)
    for m in _TAG.finditer(narration):
        text = narration[pos:m.start()]
        if text.strip():
            out.append(text)
        pos = m.end()
        body = m.group(1).strip()
        if body.lower() == "next":
            out.append(Marker("next"))
            continue
        pm = _PAUSE.fullmatch(body)
        if pm:
            secs = float(pm.group(1)) / (1000.0 if (pm.group(2) or "s").lower() == "ms" else 1.0)
            if secs > MAX_PAUSE:
                raise MarkupError(f"[{body}] is longer than {MAX_PAUSE:g}s: use a shorter pause", m.group(0))
            out.append(Pause(secs))
            continue
        if body.lower().startswith("pause"):
            raise MarkupError(f"bad duration in [{body}]: write it as [pause 0.5s] or [pause 500ms]", m.group(0))
        raise MarkupError(f"unknown markup [{body}]: use [pause 0.5s], [pause 500ms] or [next]", m.group(0))
    tail = narration[pos:]
    if tail.strip():
        out.append(tail)
    return out


def speaks(segments: list[Segment]) -> bool:
    """Whether parsed narration has words to say (not only pauses and markers)."""
    return any(isinstance(s, str) for s in segments)


def plain_text(narration: str) -> str:
    """The narration with all markup removed (what is spoken)."""
    return " ".join(" ".join(s for s in parse(narration) if isinstance(s, str)).split())
