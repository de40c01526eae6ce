"""Video and screencast slides: a clip plays in the slide's content area, streamed.

    slide: {layout: video, video: demo.mp4, fit: contain, start: 3.0, end: 12.5, loop: false, audio: mute}

The clip is decoded with PyAV as the frames are composed (one decoded frame and one
scaled frame in memory, whatever the clip's length), resampled to the video's frame
rate by timestamp (the newest clip frame at or before each output frame's time) and
scaled by FFmpeg's swscale straight to its box: `contain` (alias `fit`) shows the whole
picture inside the box, `cover` (alias `fill`) fills the box and crops. When the clip
is shorter than the scene it holds its last frame, or starts again with `loop: true`.

How long the scene lasts (`duration:` of the scene): `narration` (the default when there
is narration) or `clip` (the default without narration): the clip's span, or the
narration if that is longer. `audio: mix` adds the clip's sound under the narration.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from avatar.errors import AvatarError

FIT = {"fit": "contain", "contain": "contain", "fill": "cover", "cover": "cover"}


@dataclass(frozen=True)
class ClipInfo:
    width: int
    height: int
    duration: float     # seconds
    has_audio: bool


def clip_info(path: str | Path) -> ClipInfo:
    """What a clip holds (raises a one-line AvatarError for a file PyAV cannot read as video)."""
    import av

    path = Path(path)
    if not path.is_file():
        raise AvatarError(f"video not found: {path}", field="slide.video", hint="paths are relative to the script")
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise AvatarError(f"{path}: has no video stream", field="slide.video")
            s = c.streams.video[0]
            if s.duration is not None and s.time_base is not None:
                duration = float(s.duration * s.time_base)
            elif c.duration is not None:
                duration = c.duration / 1e6
            else:   # no duration in the header: count the frames
                duration = max((f.time or 0.0) for f in c.decode(s))
            return ClipInfo(s.codec_context.width, s.codec_context.height, duration, bool(c.streams.audio))
    except (av.FFmpegError, UnicodeDecodeError) as e:
        raise AvatarError(f"{path}: not a video PyAV can decode ({getattr(e, 'strerror', None) or e})",
                          field="slide.video", hint="use mp4, mov, webm or mkv") from None


def clip_span(slide, info: ClipInfo) -> tuple[float, float]:
    """(start, end) seconds of the clip that the slide plays, checked against the clip."""
    end = info.duration if slide.end is None else min(slide.end, info.duration)
    if slide.start >= info.duration:
        raise AvatarError(f"start {slide.start:g} s is past the end of the clip ({info.duration:.2f} s)",
                          field="slide.start")
    if end <= slide.start:
        raise AvatarError(f"end {slide.end:g} s is not after start {slide.start:g} s", field="slide.end")
    return slide.start, end


def clip_box(slide, content_box, title_box, short_side: int) -> tuple[int, int, int, int]:
    """Where the clip plays: the content box below the title band (as the slide's body box)."""
    x0, y0, x1, y1 = content_box
    if slide.title:
        y0 = max(y0, title_box[3] + max(1, int(round(10 * short_side / 720))))
    return x0, y0, x1, y1


class ClipFrames:
    """The clip's frames at `fps`, scaled for `box`; paste(out) draws the next one into a frame."""

    def __init__(self, path: Path, start: float, end: float, fps: float, box, fit: str, loop: bool, size):
        self.path, self.start, self.end, self.fps, self.loop = Path(path), start, end, float(fps), loop
        info = clip_info(path)
        x0, y0, x1, y1 = box
        bw, bh = x1 - x0, y1 - y0
        scale = (max if FIT[fit] == "cover" else min)(bw / info.width, bh / info.height)
        self.sw, self.sh = max(2, int(round(info.width * scale))), max(2, int(round(info.height * scale)))
        # the part of the scaled picture that shows, and where it goes
        cx, cy = max(0, (self.sw - bw) // 2), max(0, (self.sh - bh) // 2)
        self.src = (slice(cy, cy + min(bh, self.sh)), slice(cx, cx + min(bw, self.sw)))
        dx, dy = x0 + max(0, (bw - self.sw) // 2), y0 + max(0, (bh - self.sh) // 2)
        self.dst = (slice(dy, dy + min(bh, self.sh)), slice(dx, dx + min(bw, self.sw)))
        self._frames = self._output()

    def _decoded(self) -> Iterator[tuple[float, object]]:
        """(seconds from `start`, av.VideoFrame) from just before start up to end."""
        import av

        with av.open(str(self.path)) as c:
            s = c.streams.video[0]
            s.thread_type = "AUTO"
            if self.start > 0:
                c.seek(int(self.start / s.time_base), stream=s)   # the keyframe at or before start
            for f in c.decode(s):
                if f.time is None:
                    continue
                if f.time >= self.end - 1e-6:
                    return
                yield f.time - self.start, f

    def _scaled(self, frame) -> np.ndarray:
        return frame.reformat(width=self.sw, height=self.sh, format="rgb24").to_ndarray()[self.src]

    def _output(self) -> Iterator[np.ndarray]:
        """One scaled clip frame per output frame, forever (held, or looped)."""
        i, offset, shown, last = 0, 0.0, None, None
        length = self.end - self.start
        while True:
            pending = None
            for t, f in self._decoded():
                t += offset
                while pending is not None and i / self.fps < t - 1e-6:   # pending is what time i shows
                    if shown is not pending:
                        shown, last = pending, self._scaled(pending)
                    yield last
                    i += 1
                pending = f
            if pending is None:
                raise AvatarError(f"{self.path}: no frames between {self.start:g} s and {self.end:g} s",
                                  field="slide.video")
            if not self.loop:
                last = self._scaled(pending) if shown is not pending else last
                while True:
                    yield last
            while i / self.fps < offset + length - 1e-6:   # the clip's final frame until its span ends
                if shown is not pending:
                    shown, last = pending, self._scaled(pending)
                yield last
                i += 1
            offset += length

    def paste(self, out: np.ndarray) -> None:
        out[self.dst] = next(self._frames)


def open_clip(slide, layout, fps: float, size) -> ClipFrames:
    start, end = clip_span(slide, clip_info(slide.video))
    box = clip_box(slide, layout.content_box, layout.title_box, min(size))
    return ClipFrames(slide.video, start, end, fps, box, slide.fit, slide.loop, size)


def clip_audio(path: Path, start: float, end: float, rate: int) -> np.ndarray:
    """The clip's sound from start to end, mono float32 at `rate` (silence when it has none)."""
    import av

    n = int(round((end - start) * rate))
    out = np.zeros(n, np.float32)
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return out
        s = c.streams.audio[0]
        if start > 0:
            c.seek(int(start / s.time_base), stream=s)
        res = av.AudioResampler(format="flt", layout="mono", rate=rate)
        pos = None
        for f in c.decode(s):
            if pos is None:   # where the first decoded frame lands (seeking stops at or before start)
                pos = int(round(((f.time or 0.0) - start) * rate))
            for r in res.resample(f):
                a = r.to_ndarray().reshape(-1)
                lo, hi = max(0, pos), min(n, pos + a.size)
                if hi > lo:
                    out[lo:hi] = a[lo - pos:hi - pos]
                pos += a.size
            if pos >= n:
                break
    return out


def scene_speech(scene, speech, fps: float):
    """The scene's Speech for a video slide: padded to the clip's span (duration: clip), clip sound mixed."""
    from avatar.speech.audio import pad, silent_speech
    from avatar.speech.markup import plain_text
    from avatar.types import Speech

    slide = scene.slide
    start, end = clip_span(slide, clip_info(slide.video))
    span = end - start
    spoken = bool(plain_text(scene.narration).strip())
    mode = scene.duration if isinstance(scene.duration, str) else None
    if not spoken and scene.seconds is None:   # no narration, no length given: the clip's span
        speech = Speech(silent_speech(span, speech.sample_rate).audio, speech.sample_rate, markers=speech.markers)
    elif (mode == "clip" or (mode is None and not spoken)) and speech.duration < span:
        speech = pad(speech, 0.0, span - speech.duration)
    if slide.audio == "mix":
        sound = clip_audio(slide.video, start, end, speech.sample_rate)
        if slide.loop and sound.size:
            sound = np.tile(sound, -(-len(speech.audio) // sound.size))
        sound = sound[:len(speech.audio)]
        audio = np.array(speech.audio, np.float32)
        audio[:sound.size] += sound
        speech = Speech(np.clip(audio, -1, 1), speech.sample_rate, speech.phonemes, speech.words, speech.markers)
    return speech
