"""Identities kept on disk, so that a photo is measured once for all processes and runs.

    store = IdentityStore(cache_root / "identities")
    ident = load_identity("me.jpg", store=store)     # avatar.face.load_identity

Preparing a presenter costs MediaPipe's import, its face mesh and its selfie segmentation
(about a second of CPU); every scene worker of a render, and every render of a batch,
would pay it again for the same photo. A stored identity holds what MediaPipe measured:
the landmarks and the person mask (the photo itself is decoded again from its bytes, whose
hash is part of the key; the face box and face mask are computed from the landmarks).
Loading one gives arrays equal to a fresh build's, so outputs do not depend on the store.

Layout: ROOT/KEY.npz, KEY from the photo's sha1, the face index, the detector, the MediaPipe
version and FORMAT. The file records a sha256 of its arrays; one that does not load or does
not match is removed with a warning and built again. Files are written atomically, and
processes building the same key at once take turns on an flock of ROOT/KEY.lock: one
builds, the others then read its file.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import warnings
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

FORMAT = 1


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


class IdentityStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def key(self, photo_sha1: str, face_index: int, detector: str) -> str:
        from avatar.resources import package_version

        tool = package_version("mediapipe" if detector == "mediapipe" else "face-alignment")
        text = f"{FORMAT}|{photo_sha1}|{face_index}|{detector}|{tool}"
        return hashlib.sha1(text.encode()).hexdigest()[:24]

    def path(self, key: str) -> Path:
        return self.root / f"{key}.npz"

    def get(self, key: str) -> dict[str, np.ndarray] | None:
        """The stored arrays (landmarks, person_mask, faces), or None (missing, or failed its check)."""
        p = self.path(key)
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            warnings.warn(f"stored identity {p} is unreadable ({e.strerror}); measuring the photo again",
                          stacklevel=3)
            return None
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            recorded = str(arrays.pop("sha256"))
            if recorded != _digest(arrays):
                problem = "its digest differs from the recorded one"
            elif not {"landmarks", "person_mask", "faces"} <= arrays.keys():
                problem = "arrays are missing"
            else:
                problem = None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            problem = f"unreadable: {type(e).__name__}"
        if not problem:
            with contextlib.suppress(OSError):   # recently used: pruning by age keeps it
                os.utime(p)
            return arrays
        warnings.warn(f"stored identity {p} failed its check ({problem}); measuring the photo again",
                      stacklevel=3)
        p.unlink(missing_ok=True)
        return None

    def put(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        from avatar.files import atomic_path

        buf = io.BytesIO()
        np.savez_compressed(buf, sha256=np.array(_digest(arrays)), **arrays)
        try:
            with atomic_path(self.path(key)) as tmp:
                tmp.write_bytes(buf.getvalue())
        except OSError as e:   # a store that cannot be written only costs time
            warnings.warn(f"could not store the identity in {self.root} ({e.strerror or e}); continuing",
                          stacklevel=3)

    def turn(self, key: str):
        """Hold KEY's lock (avatar.files.file_turn on ROOT/KEY.lock)."""
        from avatar.files import file_turn

        return file_turn(self.root / f"{key}.lock")

    def get_or_build(self, key: str, build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        found = self.get(key)
        if found is not None:
            return found
        with self.turn(key):
            found = self.get(key)   # another process built it while this one waited
            if found is not None:
                return found
            arrays = build()
            self.put(key, arrays)
            return arrays


__all__ = ["IdentityStore", "FORMAT"]
