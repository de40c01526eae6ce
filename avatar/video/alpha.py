"""A presenter with a transparent background: person mask per frame, alpha video files.

    for rgba in cut_out(frames):              # MediaPipe selfie segmentation, temporally smoothed
        ...
    write_alpha_video("clip.webm", rgba_frames, fps=25, audio=..., sample_rate=...)   # or clip.mov

Formats (PyAV's bundled FFmpeg): `.webm` VP9 with alpha (libvpx-vp9, yuva420p, Opus
audio), what browsers and most editors read; `.mov` ProRes 4444 with alpha (prores_ks,
yuva444p10le, 16-bit PCM audio), what editing suites expect. Either is written to a
temporary file and renamed when complete.

The mask: MediaPipe's selfie segmentation on every frame; a smoothstep between two
confidence levels pulls the soft, upsampled edge inside the person (no fringe of the old
background around the hair), an exponential moving average over frames keeps the edge
from flickering, and a one-pixel feather softens it.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from avatar.errors import AvatarError
from avatar.files import atomic_path

ALPHA_FORMATS = {   # suffix -> (codec, pix_fmt, codec options, audio codec)
    ".webm": ("libvpx-vp9", "yuva420p", {"deadline": "good", "cpu-used": "5", "crf": "30", "b": "0",
                                          "row-mt": "1"}, "libopus"),
    ".mov": ("prores_ks", "yuva444p10le", {"profile": "4444", "alpha_bits": "16"}, "pcm_s16le"),
}
SMOOTH = 0.5            # weight of the new frame's mask in the moving average
EDGE = (0.5, 0.9)       # mask confidences mapped to alpha 0 and 1


def check_alpha_path(out: Path, option: str = "-o") -> None:
    if out.suffix.lower() not in ALPHA_FORMATS:
        raise AvatarError(f"{out}: a transparent presenter is written as .webm (VP9 with alpha) or .mov "
                          "(ProRes 4444)", field=option, hint="e.g. -o clip.webm")


def sharpen_edge(mask: np.ndarray) -> np.ndarray:
    """A soft segmentation mask -> alpha with its edge pulled inside the person (smoothstep over EDGE)."""
    x = np.clip((mask - EDGE[0]) / (EDGE[1] - EDGE[0]), 0, 1)
    return (x * x * (3 - 2 * x)).astype(np.float32)


class Matting:
    """Per-frame person alpha, temporally smoothed. Use as a context manager (it holds the model)."""

    def __init__(self, smooth: float = SMOOTH):
        self.smooth, self.avg, self.seg = smooth, None, None

    def __enter__(self):
        import mediapipe as mp

        from avatar.face.quiet import native_quiet

        with native_quiet():
            self.seg = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
            self.seg.process(np.zeros((64, 64, 3), np.uint8))   # its first run logs from native code
        return self

    def __exit__(self, *exc):
        self.seg.close()

    def alpha(self, frame: np.ndarray) -> np.ndarray:
        """(H, W) float32 0..1 alpha of the person in an RGB frame."""
        import cv2

        m = self.seg.process(np.ascontiguousarray(frame)).segmentation_mask
        m = np.ones(frame.shape[:2], np.float32) if m is None else np.clip(m.astype(np.float32), 0, 1)
        if m.shape != frame.shape[:2]:
            m = cv2.resize(m, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_LINEAR)
        a = sharpen_edge(m)   # sharpened edge first, then averaged over time (the other way round
        # the sharpening would undo the averaging where the model hesitates)
        self.avg = a if self.avg is None or self.avg.shape != a.shape else \
            cv2.addWeighted(a, self.smooth, self.avg, 1 - self.smooth, 0.0)
        return cv2.GaussianBlur(self.avg, (3, 3), 0)


def cut_out(frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """RGB frames -> RGBA frames with the background transparent."""
    with Matting() as matte:
        for f in frames:
            a = matte.alpha(f)
            yield np.dstack([f, np.round(a * 255).astype(np.uint8)])


def write_alpha_video(path: str | Path, frames: Iterable[np.ndarray], *, fps: float, audio=None,
                      sample_rate: int | None = None, metadata: dict | None = None, progress=None) -> Path:
    """Encode RGBA uint8 frames (H, W, 4) and optional audio as .webm (VP9+alpha) or .mov (ProRes 4444).
    Audio as write_mp4 takes it (mono/stereo array, or a streamed recording), read in blocks after
    the frames, cut or padded to their length."""
    import av

    from avatar.video.mp4 import AUDIO_RATE, _AudioStream, _set_metadata

    path = Path(path)
    check_alpha_path(path)
    codec, pix_fmt, options, audio_codec = ALPHA_FORMATS[path.suffix.lower()]
    rate = Fraction(fps).limit_denominator(1001)
    source = _AudioStream(audio, int(sample_rate), AUDIO_RATE) if audio is not None else None
    with atomic_path(path) as tmp:
        with av.open(str(tmp), "w", format="webm" if path.suffix.lower() == ".webm" else "mov") as out:
            _set_metadata(out, metadata)
            vs = None
            a_stream = None
            n = 0
            for frame in frames:
                if vs is None:
                    h, w = frame.shape[0] & ~1, frame.shape[1] & ~1
                    vs = out.add_stream(codec, rate=rate)
                    vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
                    vs.codec_context.options = dict(options)
                    if source is not None:
                        layout = "mono" if source.channels == 1 else "stereo"
                        a_stream = out.add_stream(audio_codec, rate=AUDIO_RATE, layout=layout)
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:h, :w]), format="rgba")
                vf.pts = n
                out.mux(vs.encode(vf))
                n += 1
                if progress is not None:
                    progress(n)
            if vs is None:
                raise ValueError("write_alpha_video: no frames")
            out.mux(vs.encode(None))
            if a_stream is not None:
                _write_audio(out, a_stream, source, int(round(n * AUDIO_RATE / rate)))
    return path


def _write_audio(out, stream, source, total: int) -> None:
    """Encode `total` samples of `source` (an avatar.video.mp4._AudioStream at AUDIO_RATE: silence
    past its end) in blocks of a second."""
    import av

    from avatar.video.mp4 import AUDIO_RATE

    layout = "mono" if source.channels == 1 else "stereo"
    fmt = stream.codec_context.codec.audio_formats[0].name
    res = av.AudioResampler(format=fmt, layout=layout, rate=AUDIO_RATE)
    for i in range(0, total, AUDIO_RATE):
        block = source.read(min(AUDIO_RATE, total - i))
        f = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format="fltp", layout=layout)
        f.sample_rate, f.pts, f.time_base = AUDIO_RATE, i, Fraction(1, AUDIO_RATE)
        for r in res.resample(f):
            out.mux(stream.encode(r))
    for r in res.resample(None):
        out.mux(stream.encode(r))
    out.mux(stream.encode(None))


def read_rgba(path: str | Path) -> Iterator[np.ndarray]:
    """Decode an alpha video as RGBA frames (VP9 through libvpx, which reads the alpha side channel)."""
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        if s.codec_context.name == "vp9":
            dec = av.CodecContext.create("libvpx-vp9", "r")
            for pkt in c.demux(s):
                for f in dec.decode(pkt):
                    yield f.to_ndarray(format="rgba")
        else:
            for f in c.decode(s):
                yield f.to_ndarray(format="rgba")
