"""Piper voices kept on disk ready to load, so that a voice is prepared once per cache.

    store = VoiceModelStore(cache_root / "voices")
    session = store.session(model_path, options)     # an onnxruntime.InferenceSession

Preparing a Piper voice (avatar.speech.piper_voice.load_piper) means importing onnx,
parsing the model, patching it (alignment output, fixed noise), serialising it again and
letting onnxruntime optimise the graph: about 0.9 s of CPU, paid by every scene worker of
every render. The store keeps the patched graph as onnxruntime optimised it (the
portable "extended" level, no machine-specific layouts), which loads in about a sixth of
that. A session from the store gives the very samples of a fresh one (the optimised
graph is what onnxruntime runs either way).

Layout: ROOT/KEY.onnx (the optimised graph, as onnxruntime wrote it) and ROOT/KEY.sha256
(its digest, written first), KEY from the model file's path, size and modification time,
onnxruntime's and piper's versions, the machine type and FORMAT (a replaced model file gets
a new key). A graph whose digest is missing or differs is removed with a warning and
prepared again. Both files are renamed into place whole; processes preparing the same voice
at once take turns on an flock of ROOT/KEY.lock: one prepares it, the others then load what it
stored (in a parallel render one scene worker prepares the voices while the others measure
the photo: avatar.build.run). Only the main thread writes:
a helper thread can be abandoned at exit (avatar.cli ends at once while one runs), which
would leave its temporary file behind; helpers read the store.
onnxruntime reads the stored graph from its file (no copy of it in Python's memory).
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import threading
import warnings
from pathlib import Path
from typing import Callable

FORMAT = 1


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _session(source: str | bytes, options):
    """An onnxruntime CPU session of a model file's path or a model's bytes."""
    import onnxruntime

    return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])


class VoiceModelStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def key(self, model: Path) -> str:
        from avatar.resources import package_version

        st = model.stat()
        text = (f"{FORMAT}|{model.resolve()}|{st.st_size}|{st.st_mtime_ns}|{package_version('onnxruntime')}|"
                f"{package_version('piper-tts')}|{platform.machine()}")
        return hashlib.sha1(text.encode()).hexdigest()[:24]

    def path(self, key: str) -> Path:
        return self.root / f"{key}.onnx"

    def get(self, key: str) -> Path | None:
        """The stored graph's file, or None (missing, or failed its check: then removed)."""
        p, d = self.path(key), self.path(key).with_suffix(".sha256")
        if not p.is_file():
            return None
        try:
            ok = d.read_text(encoding="ascii").strip() == _sha256(p)
            problem = "its digest differs from the recorded one"
        except FileNotFoundError:
            ok, problem = False, "no digest recorded"
        except (OSError, UnicodeDecodeError) as e:
            ok, problem = False, f"unreadable: {getattr(e, 'strerror', None) or type(e).__name__}"
        if ok:
            with contextlib.suppress(OSError):   # recently used: pruning by age keeps it
                os.utime(p)
                os.utime(d)
            return p
        warnings.warn(f"stored voice {p} failed its check ({problem}); preparing the voice again", stacklevel=3)
        for f in (p, d):
            f.unlink(missing_ok=True)
        return None

    def session(self, model: Path, options, prepare: Callable[[], bytes]):
        """An onnxruntime session of `model` as `prepare()` (the patched graph's bytes) makes it,
        with `options` (threads, spinning): from the store, or prepared, optimised and stored
        (onnxruntime writes the optimised graph straight into the store's temporary file)."""
        from avatar.files import file_turn

        key = self.key(model)
        stored = self.get(key)
        if stored is not None:
            return _session(str(stored), options)
        if threading.current_thread() is not threading.main_thread():
            return _session(prepare(), options)
        with file_turn(self.root / f"{key}.lock"):   # one process prepares it, the others wait and read it
            stored = self.get(key)
            if stored is not None:
                return _session(str(stored), options)
            return self._prepare(key, options, prepare)

    def _prepare(self, key: str, options, prepare: Callable[[], bytes]):
        import onnxruntime

        from avatar.files import atomic_path, write_text

        level = options.graph_optimization_level
        session = None
        try:
            with atomic_path(self.path(key)) as tmp:
                options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
                options.optimized_model_filepath = str(tmp)
                try:
                    session = _session(prepare(), options)
                except Exception as e:   # e.g. a full disk (onnxruntime's own error), or a bad model:
                    raise _NotWritten from e   # made again below without writing, where a bad model fails
                finally:
                    options.graph_optimization_level, options.optimized_model_filepath = level, ""
                if not tmp.stat().st_size:
                    raise _NotWritten
                write_text(self.path(key).with_suffix(".sha256"), _sha256(tmp) + "\n")   # the digest first
        except _NotWritten:
            pass
        except OSError as e:   # a store that cannot be written only costs time
            warnings.warn(f"could not store the voice in {self.root} ({e.strerror or e}); continuing", stacklevel=4)
        if session is None:
            session = _session(prepare(), options)
        return session


class _NotWritten(Exception):
    """onnxruntime wrote no optimised graph: nothing to store."""


__all__ = ["VoiceModelStore", "FORMAT"]
