"""User-facing errors.

Every problem with the user's input is raised as :class:`AvatarError` with a
one-line message that names the file, line or field and says how to fix it.
The CLI prints the message (no traceback) and exits with code 2.
"""
from __future__ import annotations

from pathlib import Path


class AvatarError(Exception):
    """A clear, one-line error about the user's input or environment."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | Path | None = None,
                 line: int | None = None, field: str | None = None, hint: str | None = None):
        where = ""
        if path is not None:
            where = str(path)
            if line is not None:
                where += f":{line}"
            where += ": "
        what = f"{field}: " if field else ""
        text = f"{where}{what}{message}"
        if hint:
            text += f" ({hint})"
        super().__init__(" ".join(text.split()))  # always one line
        self.path, self.line, self.field, self.hint = path, line, field, hint
