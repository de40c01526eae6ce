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


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP arrived: unwinds like Ctrl-C, so every `finally` (temporary
    files) runs. A KeyboardInterrupt, so nothing that catches Exception swallows it."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


# errno -> (what happened, how to fix it): the one-line report of an operating-system error
_OS_ERRORS = {
    "ENOSPC": ("no space left on device", "free some space, or choose another --out / --cache-dir"),
    "EDQUOT": ("disk quota exceeded", "free some space, or choose another --out / --cache-dir"),
    "EACCES": ("permission denied", "fix its permissions, or choose a place you can write to: "
                                    "--out, --cache-dir or AVATAR_CACHE"),
    "EPERM": ("operation not permitted", "fix its permissions, or choose a place you can write "
                                         "to: --out, --cache-dir or AVATAR_CACHE"),
    "EROFS": ("read-only file system", "choose a writable place: --out, --cache-dir or AVATAR_CACHE"),
    "EISDIR": ("is a folder, not a file", "give a file name, e.g. -o talk.mp4"),
    "ENOTDIR": ("a part of the path is a file, not a folder", "check the path: --out, --cache-dir or AVATAR_CACHE"),
    "EEXIST": ("already exists and is not a folder", "remove it or choose another path"),
    "ENOENT": ("no such file or folder", "check the path"),
    "ENAMETOOLONG": ("file name too long", "choose a shorter name"),
    "EMFILE": ("too many open files", "raise the limit (ulimit -n) or use fewer --jobs"),
    "ENFILE": ("too many open files in the system", "close other programs or use fewer --jobs"),
    "ENOMEM": ("out of memory", "use fewer --jobs, a smaller --size or --preview"),
    "EIO": ("input/output error", "check the disk"),
}


def os_error_message(e: OSError) -> str:
    """One line for an OSError: what failed, the path, how to fix it."""
    import errno
    import os

    name = errno.errorcode.get(e.errno or 0, "")
    what, hint = _OS_ERRORS.get(name, ((e.strerror or str(e) or type(e).__name__).rstrip("."), None))
    paths = [os.fsdecode(p) if isinstance(p, (str, bytes)) else str(p)
             for p in (getattr(e, "filename", None), getattr(e, "filename2", None)) if p not in (None, "")]
    if len(paths) == 2 and ".tmp" in os.path.basename(paths[0]):   # rename(temporary file, target): the target
        paths = paths[1:]
    where = " -> ".join(paths)
    text = f"{what}: {where}" if where else what
    if hint:
        text += f" ({hint})"
    return " ".join(text.split())
