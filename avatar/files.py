"""Atomic output files: write to a temporary file beside the target, rename when complete.

An error, Ctrl-C or SIGTERM leaves no half-written output (and an older file of the same
name stays as it was). The finished file gets the usual permissions (0666 less the umask),
not mkstemp's private 0600.

Temporary files left by a process that was killed outright (kill -9, power loss) are
removed by the next writer of the same target, by a lock-free rule:

- a temporary file's name carries its writer: ``.NAME.tmp<pid>-<start>-<owner>.XXXXXXXX.mp4``,
  where <start> is the process's start time (clock ticks since boot, /proc/<pid>/stat) and
  <owner> a digest of the host, boot and pid namespace it runs in;
- a file written under our own owner is stale when no process with that pid and start time
  exists any more (a reused pid has another start time). A live writer's file is never
  touched, so no lock is needed;
- a file from another owner (another machine sharing the folder, another container, an
  earlier boot) or with no writer in its name is stale when older than STALE_AGE: no render
  of one scene or one clip takes that long.
"""
from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import re
import socket
import time
from pathlib import Path
from typing import Iterator

STALE_AGE = 24 * 3600.0      # seconds after which a temporary file of an unknown writer is stale
_WRITER = re.compile(r"\.tmp(\d+)-(\d+)-([0-9a-f]{8})\.")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def process_start(pid: int) -> int | None:
    """A process's start time in clock ticks since boot (Linux), None when it does not exist or
    has ended (a zombie its parent has not reaped yet: it runs no code any more)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    try:
        fields = stat[stat.rindex(b")") + 2:].split()   # from field 3; the name may hold spaces and ')'
        return None if fields[0] in (b"Z", b"X") else int(fields[19])   # state, start time (field 22)
    except (ValueError, IndexError):
        return None


@functools.lru_cache(maxsize=1)
def _owner() -> str:
    """This host + boot + pid namespace: where pids and start times mean the same thing."""
    parts = [socket.gethostname()]
    for p in ("/proc/sys/kernel/random/boot_id", "/proc/self/ns/pid"):
        try:
            parts.append(Path(p).read_text().strip() if p.endswith("boot_id") else str(os.stat(p).st_ino))
        except OSError:
            parts.append("?")
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()[:8]


def writer_tag() -> str:
    """This process's writer tag for temporary-file names: tmp<pid>-<start>-<owner>."""
    pid = os.getpid()
    return f"tmp{pid}-{process_start(pid) or 0}-{_owner()}"


def is_stale(path: Path, now: float | None = None) -> bool:
    """True when the temporary file `path` belongs to no running writer (see the module docstring)."""
    m = None
    for m in _WRITER.finditer(path.name):   # the last tag: the innermost writer
        pass
    if m is not None and m.group(3) == _owner() and m.group(2) != "0":
        pid, start = int(m.group(1)), int(m.group(2))
        return process_start(pid) != start
    try:
        age = (now or time.time()) - path.stat().st_mtime
    except OSError:
        return False
    return age > STALE_AGE


def remove_stale(folder: Path, prefix: str) -> int:
    """Remove stale temporary files named `prefix...` (or `.prefix...`, nested) in `folder`.
    Returns how many were removed; a file that cannot be removed is left alone."""
    removed = 0
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    now = time.time()
    for name in names:
        if not name.lstrip(".").startswith(prefix.lstrip(".")) or not name.startswith("."):
            continue
        p = folder / name
        if (_WRITER.search(name) or _mkstemp_name(name)) and p.is_file() and is_stale(p, now):
            with contextlib.suppress(OSError):
                p.unlink()
                removed += 1
    return removed


def _mkstemp_name(name: str) -> bool:
    """An old-style temporary name with no writer: .NAME.XXXXXXXX.ext (mkstemp's 8 random characters)."""
    return re.search(r"\.[a-z0-9_]{8}\.[A-Za-z0-9]+$", name) is not None


def check_target(path: str | Path, folder: bool = False) -> None:
    """Preflight of an output path (before any heavy work): raises the OSError that writing
    would raise later (EISDIR, ENOTDIR, EROFS, EACCES), with the path in it: a temporary file
    is created (and removed) in the nearest existing folder. A missing folder is fine (it is
    created). folder: `path` is a folder to write in."""
    path = Path(path)
    if not folder and path.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    parent = path if folder else path.parent
    existing = parent
    while not existing.exists():
        if existing.is_symlink() or existing == existing.parent:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(existing))
    if existing.is_dir() and not os.access(existing, os.W_OK | os.X_OK):
        ro = bool(os.statvfs(existing).f_flag & os.ST_RDONLY)
        code = errno.EROFS if ro else errno.EACCES
        raise OSError(code, os.strerror(code), str(existing))
    if existing.is_dir():   # permissions are not the whole story (root, /proc, full or odd file systems): try
        _probe(existing, path if existing == parent and not folder else existing / ".probe")


def _probe(folder: Path, target: Path) -> None:
    """Create and remove a temporary file in `folder` under atomic_path's naming scheme for `target`:
    raises the OSError that the real write would raise, naming `folder`."""
    try:
        with _temporary(folder, f".{target.stem}.{writer_tag()}.", target.suffix):
            pass
    except OSError as e:
        code = e.errno or errno.EACCES
        if code == errno.ENOENT:   # the folder exists but takes no new file (/proc, /sys)
            code = errno.EROFS if os.statvfs(folder).f_flag & os.ST_RDONLY else errno.EACCES
        raise OSError(code, os.strerror(code), str(folder)) from None


_pending: dict[str, int] = {}   # temporary files being written -> the pid writing them (see remove_pending)


def remove_pending() -> int:
    """Remove the temporary files this process is writing now: called just before the process
    ends abruptly (os._exit after a signal), when the `finally` blocks of the writers that were
    interrupted may never run (a signal landing inside `with atomic_path(...)`'s own entry, after the
    file was made and before the block began). Returns how many were removed."""
    pid = os.getpid()
    removed = 0
    for name, owner in list(_pending.items()):
        if owner == pid:
            with contextlib.suppress(OSError):
                os.unlink(name)
                removed += 1
            _pending.pop(name, None)
    return removed


@contextlib.contextmanager
def _temporary(folder: Path, prefix: str, suffix: str) -> Iterator[Path]:
    """Make an empty file `folder/prefix<8 random characters>suffix` (mode 0600, like mkstemp) and
    remove it when the block ends, whatever ends it. Its name is known (and registered for
    remove_pending) before the file exists, so no signal can land between its creation and the
    code that removes it."""
    name = ""
    try:
        for _ in range(100):
            name = os.path.join(folder, f"{prefix}{os.urandom(4).hex()}{suffix}")
            _pending[name] = os.getpid()
            try:
                os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600))
                break
            except FileExistsError:   # not ours: never removed
                _pending.pop(name, None)
                name = ""
        else:
            raise FileExistsError(errno.EEXIST, "no unused temporary file name", os.path.join(folder, prefix))
        yield Path(name)
    finally:
        if name:
            with contextlib.suppress(OSError):
                os.unlink(name)
            _pending.pop(name, None)


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` if the block succeeds.

    suffix: the temporary file's suffix (default: the target's, so writers that pick a
    format from the file name still work). Stale temporary files of the same target
    (from killed runs) are removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path.parent, f".{path.stem}.")
    made = False
    try:
        with _temporary(path.parent, f".{path.stem}.{writer_tag()}.", path.suffix if suffix is None else suffix) as tmp:
            made = True
            yield tmp
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, path)
    except OSError as e:   # name the target, not our temporary file (PyAV's errors name no file at all)
        if e.errno and (not made or not e.filename or _WRITER.search(os.path.basename(os.fsdecode(e.filename)))):
            raise OSError(e.errno, e.strerror or str(e), str(path)) from e
        raise


def write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 text atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def file_turn(lock: str | Path) -> Iterator[None]:
    """Hold an flock on the file `lock` (made if missing): processes that prepare the same thing
    at once take turns, so one prepares it and the others then read what it stored. The lock
    goes with its holder, even one killed outright. A no-op where there is no flock (no fcntl)
    or the folder cannot be written: then nobody waits, and they may prepare it side by side."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    lock = Path(lock)
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        f = open(lock, "a")
    except OSError:
        yield
        return
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX)
        except OSError:
            pass
        yield
