"""Plain-text scripts: one scene per paragraph (paragraphs are separated by blank lines).

No slides: the presenter speaks full screen. Narration markup ([pause 0.5s], [next])
works as everywhere else.
"""
from __future__ import annotations

from pathlib import Path

from avatar.errors import AvatarError
from avatar.script.build import Locs, build, file_title, read_text
from avatar.script.models import Presentation


def load_text(path: str | Path) -> Presentation:
    """Load a plain-text file (any suffix but .yaml/.yml/.md/.markdown)."""
    path = Path(path)
    return _from_text(read_text(path), str(path), file_title(path), path.resolve())


def from_text(text: str, source: str | Path | None = None) -> Presentation:
    """A Presentation from text given inline (`avatar speak "Hello there."`).

    `source` only names the text in error messages and becomes Presentation.source.
    """
    return _from_text(text, str(source) if source is not None else "<text>", None, source)


def _from_text(text: str, name: str, title: str | None, source: str | Path | None) -> Presentation:
    scenes: list[dict] = []
    locs: Locs = {}
    para: list[str] = []
    start = 0
    for n, line in enumerate(text.splitlines() + [""], start=1):
        if line.strip():
            if not para:
                start = n
            para.append(line.strip())
        elif para:
            at = ("scenes", len(scenes))
            locs[at] = locs[at + ("narration",)] = (name, start)
            scenes.append({"narration": " ".join(para)})
            para = []
    if not scenes:
        raise AvatarError("no text to speak", path=name, line=1 if name != "<text>" else None,
                          hint="write the narration as paragraphs separated by blank lines")
    data: dict = {"scenes": scenes}
    if title and title.strip():
        data["title"] = title.strip()
    return build(data, locs, source, (name, 1), {name: text})
