"""The scene cache: segments stored under the hash of their plan, verified before reuse.

    cache = SceneCache(cache_root(cache_dir))
    info = cache.get(plan.key)                  # SceneInfo, or None (missing or failed its check)
    cache.put(plan, lambda tmp: execute(plan, tmp))

Layout: ROOT/scenes/KEY.mp4 and ROOT/scenes/KEY.json (beside them ROOT/identities/,
avatar.face.store, and ROOT/voices/, avatar.speech.model_store). The sidecar is written after
the segment, atomically, and records the segment's size and sha256, the plan it was made from
and the scene's facts (duration, word times). A segment whose sidecar is missing, unreadable
or does not match it (size, sha256), or that fails to open or has another frame count or
duration than its sidecar records, is discarded and rendered again with a one-line warning.
Stale temporary files of killed runs are removed by avatar.files' lock-free rule (their
writer's pid and start time are in their names).
"""
from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from avatar.errors import AvatarError
from avatar.files import atomic_path, write_text

SIDECAR_VERSION = 1


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """--cache-dir, else $AVATAR_CACHE, else the platform's user cache folder (platformdirs)."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    env = os.environ.get("AVATAR_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("avatar", appauthor=False))


@dataclass
class CacheInfo:
    root: Path
    segments: int
    bytes: int


class SceneCache:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.dir = self.root / "scenes"

    @property
    def identities(self):
        """The store of measured photos beside the scenes (avatar.face.store)."""
        from avatar.face.store import IdentityStore

        return IdentityStore(self.root / "identities")

    @property
    def voices(self) -> Path:
        """The folder of prepared Piper voices beside the scenes (avatar.speech.model_store)."""
        return self.root / "voices"

    def segment(self, key: str) -> Path:
        return self.dir / f"{key}.mp4"

    def sidecar(self, key: str) -> Path:
        return self.dir / f"{key}.json"

    # ------------------------------------------------------------------ get / put
    def get(self, key: str):
        """The SceneInfo of a verified cached segment, or None (a bad entry is removed, with a warning)."""
        from avatar.build.plan import file_digest
        from avatar.build.scene import SceneInfo

        seg, side = self.segment(key), self.sidecar(key)
        if not side.exists():
            return None
        problem = None
        try:
            meta = json.loads(side.read_text(encoding="utf-8"))
            if meta.get("version") != SIDECAR_VERSION:
                problem = "an older sidecar version"
            elif seg.stat().st_size != meta["size"]:
                problem = f"size {seg.stat().st_size} bytes, {meta['size']} recorded"
            elif file_digest(seg) != meta["sha256"]:
                problem = "its content digest differs from the recorded one"
            info = SceneInfo.from_dict(meta["info"])
            problem = problem or _playable(seg, info)
        except FileNotFoundError:
            problem = "the segment is missing"
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            problem = f"unreadable sidecar ({type(e).__name__})"
        if problem:
            warnings.warn(f"cached scene {key} failed its check ({problem}) and is rendered again", stacklevel=2)
            self.discard(key)
            return None
        now = time.time()
        for p in (seg, side):   # recently used: pruning by age keeps it
            try:
                os.utime(p, (now, now))
            except OSError:
                pass
        return info

    def put(self, plan, make: Callable[[Path], object]):
        """Run make(tmp_segment) -> SceneInfo, then store the segment and (after it) its sidecar."""
        from avatar.build.plan import file_digest

        key = plan.key
        self.dir.mkdir(parents=True, exist_ok=True)
        seg = self.segment(key)
        with atomic_path(seg) as tmp:
            info = make(tmp)
            size, digest = tmp.stat().st_size, file_digest(tmp)
        meta = {"version": SIDECAR_VERSION, "key": key, "size": size, "sha256": digest,
                "info": info.to_dict(), "plan": plan.keyed()}
        write_text(self.sidecar(key), json.dumps(meta))
        return info

    def prepare(self) -> None:
        """Create the cache folder (an OSError when it cannot be written) and remove stale temporary files."""
        from avatar.files import check_target

        check_target(self.dir, folder=True)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.clean()

    def clean(self) -> int:
        """Remove stale temporary files of killed runs (avatar.files.is_stale). Returns how many."""
        from avatar.files import remove_stale

        return remove_stale(self.dir, ".")

    def discard(self, key: str) -> None:
        for p in (self.sidecar(key), self.segment(key)):
            p.unlink(missing_ok=True)

    # ------------------------------------------------------------------ maintenance
    def _entries(self) -> list[tuple[Path, int, float]]:
        """(path, bytes, last used) of every file in the cache."""
        out = []
        if self.root.is_dir():
            for p in self.root.rglob("*"):
                try:
                    st = p.stat()
                except OSError:
                    continue
                if p.is_file():
                    out.append((p, st.st_size, st.st_mtime))
        return out

    def info(self) -> CacheInfo:
        entries = self._entries()
        segs = sum(1 for p, _, _ in entries if p.parent == self.dir and p.suffix == ".mp4")
        return CacheInfo(self.root, segs, sum(b for _, b, _ in entries))

    def prune(self, max_bytes: int | None = None, older_than: float | None = None) -> tuple[int, int]:
        """Remove entries (scenes, stored identities and voices) unused for `older_than` seconds, then the least
        recently used ones until the cache is at most `max_bytes`. Returns (scenes removed, bytes freed)."""
        entries = self._entries()
        groups: dict[tuple[Path, str], list] = {}   # a scene's segment + sidecar; a stored identity; a voice
        kinds = {self.dir: (".mp4", ".json"), self.identities.root: (".npz", ".lock"), self.voices: (".onnx", ".sha256", ".lock")}
        for p, b, t in entries:
            if p.suffix in kinds.get(p.parent, ()) and not p.name.startswith("."):
                groups.setdefault((p.parent, p.stem), []).append((p, b, t))
        total = sum(b for _, b, _ in entries)
        order = sorted(groups.items(), key=lambda kv: max(t for _, _, t in kv[1]))   # oldest use first
        now, removed, freed = time.time(), 0, 0
        for (folder, key), files in order:
            used = max(t for _, _, t in files)
            too_old = older_than is not None and now - used > older_than
            too_big = max_bytes is not None and total > max_bytes
            if not (too_old or too_big):
                continue
            size = sum(b for _, b, _ in files)
            for f, _, _ in files:
                f.unlink(missing_ok=True)
            removed += folder == self.dir
            freed, total = freed + size, total - size
        return removed, freed

    def clear(self) -> tuple[int, int]:
        """Remove everything under the cache root. Returns (scene entries, bytes)."""
        info = self.info()
        if self.root.is_dir():
            shutil.rmtree(self.root)
        return info.segments, info.bytes


def _playable(seg: Path, info) -> str | None:
    """Why the segment cannot be served (None when it can): it must open, with one video and
    one audio stream whose header frame count and duration match the sidecar's. Reads the
    container header only (no decoding)."""
    import av

    try:
        with av.open(str(seg)) as c:
            if not c.streams.video or not c.streams.audio:
                return "a stream is missing"
            v = c.streams.video[0]
            frames = v.frames
            seconds = float(v.duration * v.time_base) if v.duration else 0.0
    except (av.error.FFmpegError, OSError, ValueError) as e:
        return f"it does not open ({type(e).__name__})"
    if frames != info.frames or abs(seconds - info.duration) > 1.5 * info.duration / max(info.frames, 1):
        return f"{frames} frames / {seconds:.2f} s, {info.frames} / {info.duration:.2f} s recorded"
    return None


# --------------------------------------------------------------------------- option parsing
_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
          "kib": 2 ** 10, "mib": 2 ** 20, "gib": 2 ** 30, "tib": 2 ** 40}
_AGES = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def _split(text: str) -> tuple[float, str]:
    import re

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)), m.group(2).lower()


def parse_size(text: str, option: str = "--max-size") -> int:
    """'2GB', '500MB', '1.5GiB', '1000' (bytes) -> bytes."""
    try:
        value, unit = _split(text)
        return int(value * _UNITS[unit])
    except (ValueError, KeyError):
        raise AvatarError(f"{text!r} is not a size", field=option, hint="e.g. 2GB, 500MB, 1.5GiB") from None


def parse_age(text: str, option: str = "--older-than") -> float:
    """'30d', '12h', '90min', '2w' -> seconds."""
    try:
        value, unit = _split(text)
        return value * _AGES[unit or "d"]
    except (ValueError, KeyError):
        raise AvatarError(f"{text!r} is not an age", field=option, hint="e.g. 30d, 12h, 90min, 2w") from None
