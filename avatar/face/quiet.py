"""Silence MediaPipe's native (C++) log lines, which bypass Python's logging.

MediaPipe prints INFO/WARNING lines from its graph threads straight to file
descriptor 2 when a graph starts; the GLOG/absl environment variables do not reach
them in the 0.10 wheels. Python exceptions are unaffected (they are raised after the
descriptor is restored). Set AVATAR_NATIVE_LOGS=1 to see the lines.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager


@contextmanager
def native_quiet():
    if os.environ.get("AVATAR_NATIVE_LOGS"):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):   # no real stderr (embedded interpreters): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
