"""Scripts -> Presentation: YAML templates, Markdown decks, PowerPoint/ODP decks, plain text.

    from avatar.script import load, from_text
    deck = load("talk.yaml")        # .yaml/.yml template, .md/.markdown deck, .pptx/.odp/.ppt deck
                                    # (avatar.script.deck), plain text: .txt or no suffix
    deck = from_text("Hello there. [pause 0.5s] Welcome!")

Every problem with the input raises avatar.errors.AvatarError with one line that names
file:line: field and how to fix it. Relative paths in a script are resolved against the
folder of the file that wrote them; referenced files must exist at load time.
"""
from __future__ import annotations

from pathlib import Path

from avatar.script.models import Presentation

YAML_SUFFIXES = (".yaml", ".yml")
MARKDOWN_SUFFIXES = (".md", ".markdown")
DECK_SUFFIXES = (".pptx", ".odp", ".ppt")      # LibreOffice renders them (avatar.script.deck)
TEXT_SUFFIXES = (".txt", ".text", "")


def load(path: str | Path) -> Presentation:
    """Load a script file, choosing the reader by its suffix."""
    path = Path(path).expanduser()
    suffix = path.suffix.lower()
    if suffix in YAML_SUFFIXES:
        from avatar.script.yaml_loader import load_yaml
        return load_yaml(path)
    if suffix in MARKDOWN_SUFFIXES:
        from avatar.script.markdown import load_markdown
        return load_markdown(path)
    if suffix in DECK_SUFFIXES:
        from avatar.script.deck import load_deck
        return load_deck(path)
    if suffix not in TEXT_SUFFIXES:
        from avatar.errors import AvatarError
        raise AvatarError(f"unsupported script type {suffix!r}", path=path,
                          hint="use a YAML template (.yaml), a Markdown deck (.md), a slide deck (.pptx, .odp, "
                               ".ppt) or plain text (.txt)")
    from avatar.script.text import load_text
    return load_text(path)


def from_text(text: str, source: str | Path | None = None) -> Presentation:
    """A Presentation from inline plain text: one scene per paragraph, no slides."""
    from avatar.script.text import from_text as _from_text
    return _from_text(text, source)


__all__ = ["load", "from_text", "Presentation"]
