"""Assemble: scene segments -> the output video and its caption files, as one set.

The captions of the whole video are each scene's cues (the same ones burned into it)
shifted to the joined timeline. The .srt/.vtt are written first (to temporary files)
and the .mp4 is renamed into place last, so a failure leaves the previous output set and
no new partial one.
"""
from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path

from avatar.build.scene import SceneInfo
from avatar.files import atomic_path


def timeline_cues(infos: list[SceneInfo], spec) -> list:
    """Every scene's caption cues on the joined video's timeline."""
    from avatar.captions import build_cues
    from avatar.types import Word

    cues, offset = [], 0.0
    for info in infos:
        words = [Word(t, s, e) for t, s, e in info.words]
        for c in build_cues(words, spec, text=info.text) if words else []:
            cues.append(replace(c, start=c.start + offset, end=c.end + offset,
                                words=tuple(replace(w, start=w.start + offset, end=w.end + offset)
                                            for w in c.words)))
        offset += info.duration
    return cues


@contextlib.contextmanager
def output_set(out: Path, cues: list, chapters: list | None = None):
    """Yield a temporary path for the video; on success write OUT.srt / OUT.vtt (when there are
    cues), OUT.chapters.vtt (when there are chapters) and rename the video into place last.
    A failure leaves the previous set untouched."""
    from avatar.captions import write_srt, write_vtt

    with contextlib.ExitStack() as stack:
        # renamed in reverse order of entering: the video (entered first) lands last
        video = stack.enter_context(atomic_path(out))
        yield video
        if cues:
            write_srt(stack.enter_context(atomic_path(out.with_suffix(".srt"))), cues)
            write_vtt(stack.enter_context(atomic_path(out.with_suffix(".vtt"))), cues)
        if chapters:
            write_vtt(stack.enter_context(atomic_path(out.with_suffix(".chapters.vtt"))), chapters)


class AudioAhead:
    """The joined audio track (avatar.video.mp4.joined_audio), made while the last scenes are still
    rendering: the executor add()s every scene's audio as soon as it is known (a cached
    segment, or segment_audio() from a scene worker once the narration is made); once all
    of them are in, a thread mixes (`mix_for(infos)`: the final-mix filter, or None) and
    encodes the track, and the join copies its packets (assemble's `audio`). Without it the
    join does the same work itself, after the last scene.

        ahead = AudioAhead(plans, fps, lambda infos: finishing(deck, infos, root)["mix"])
        run(plans, cache, audio=ahead)
        assemble(..., audio=ahead.result())

    The scenes' audio is held in memory until the track is made (FLAC, about 3 MB a minute):
    past MAX_BYTES (a long video) it gives up, and the join makes the track as before.
    """

    MAX_BYTES = 64 * 2 ** 20

    def __init__(self, plans: list, fps: float, mix_for):
        import threading

        self.keys = [p.key for p in plans]
        self.fps, self.mix_for = fps, mix_for
        self.got: dict[str, tuple] = {}
        self.lock = threading.Lock()
        self.thread = None
        self.track = None
        self.held = 0        # bytes of scene audio held; None once given up

    def add(self, key: str, info: SceneInfo, source, frames: int | None = None) -> None:
        """A scene's audio: `source` a segment file or segment_audio() bytes, `frames` its video
        frames (None: counted in the segment)."""
        import threading

        with self.lock:
            if self.held is None:
                return
            self.held += len(source) if isinstance(source, bytes) else 0
            if self.held > self.MAX_BYTES:
                self.held, self.got = None, {}
                return
            self.got[key] = (info, source, frames)
            if self.thread is not None or any(k not in self.got for k in self.keys):
                return
            # a daemon: an interrupted render does not wait for it (FFmpeg's encoder, unlike
            # onnxruntime, lets the interpreter finalise under it: avatar.cli ends normally, and
            # the scene workers are stopped and clean up first)
            self.thread = threading.Thread(target=self._make, name="avatar-audio", daemon=True)
        self.thread.start()

    def _make(self) -> None:
        from avatar.video.mp4 import _fps_fraction, _video_frames, joined_audio

        try:
            rows = [self.got[k] for k in self.keys]
            frames = [n if n is not None else _video_frames(src) for _, src, n in rows]
            fps = _fps_fraction(self.fps)
            self.track = (joined_audio([src for _, src, _ in rows], frames, fps,
                                       self.mix_for([info for info, _, _ in rows])), frames, fps)
        except Exception:   # made again by the join, where the same error is raised and reported
            self.track = None
        self.got = {}

    def result(self):
        """(track, frames, fps) for concat_mp4's `audio`, or None (not every scene came in, or it failed)."""
        if self.thread is None:
            return None
        self.thread.join()
        return self.track


def assemble(segments: list[Path], infos: list[SceneInfo], out: Path, *, title: str, captions,
             mix=None, chapters: list | None = None, audio=None) -> Path:
    """Join `segments` into `out` (+ OUT.srt / OUT.vtt when captions.files).

    mix: the final-mix audio filter (avatar.build.finish); chapters: Cues titled by slide,
    written as MP4 chapters and OUT.chapters.vtt; audio: AudioAhead.result() (the joined
    track made while the scenes rendered, with that same mix)."""
    from avatar.video import concat_mp4
    from avatar.video.chapters import to_pyav
    from avatar.video.tags import metadata

    cues = timeline_cues(infos, captions) if captions.enabled and captions.files else []
    with output_set(Path(out), cues, chapters) as video:
        concat_mp4(segments, video, metadata=metadata(title), audio_filter=mix,
                   chapters=to_pyav(chapters) if chapters else None, audio=audio)
    return Path(out)
