"""MP4 writing, joining and probing with PyAV (no ffmpeg command line).

write_mp4  streams RGB frames + a narration track into an H.264/AAC MP4 (scene
           segments: H.264/FLAC, so the one lossy audio encoding is the final one)
concat_mp4 joins scene segments: video packets are copied (no re-encode),
           the audio track is decoded, cut to each segment's video length and
           encoded as one continuous AAC stream (see concat_mp4)
probe      what a file holds (for tests and checks)
read_frames / read_audio  decoders (for tests, and the concat fallback)

All writers go to a temporary file in the destination folder and rename it when
complete: an error or an interrupt never leaves a half-written video behind.
"""
from __future__ import annotations

import contextlib
import functools
from collections import deque
from contextlib import closing
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Callable, Collection, Iterable, Iterator

import numpy as np

from avatar.errors import AvatarError
from avatar.files import atomic_path

AUDIO_RATE = 48000          # audio output rate: one rate for every segment keeps them joinable
AUDIO_CHUNK = 1024          # AAC frame size (the blocks every audio track is fed in)
AHEAD = 2                   # frames made ahead in a helper thread while x264 encodes (write_mp4)
_STANDARD_TAGS = {"title", "comment", "description", "artist", "author", "album", "genre",
                  "copyright", "date", "year", "synopsis", "encoder", "composer", "show",
                  "episode_id", "network", "lyrics", "grouping", "keywords"}


# --------------------------------------------------------------------------- helpers
def _fps_fraction(fps: float | Fraction) -> Fraction:
    f = Fraction(fps).limit_denominator(1001)
    if f <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return f


def _container_options(metadata: dict | None) -> dict:
    flags = "+faststart"
    if metadata and any(k.lower() not in _STANDARD_TAGS for k in metadata):
        flags += "+use_metadata_tags"   # keep custom keys (e.g. "ai_generated") as mdta tags
    return {"movflags": flags}


def _set_metadata(container, metadata: dict | None) -> None:
    for k, v in (metadata or {}).items():
        container.metadata[str(k)] = str(v)


def _channels_first(audio: np.ndarray) -> np.ndarray:
    """(n,) or (n, c) (or already (c, n) with c <= 2) -> (c, n), any dtype, no copy."""
    a = np.asarray(audio)
    if a.ndim == 1:
        return a[None, :]
    if a.ndim == 2:
        return a if (a.shape[1] > 2 and a.shape[0] <= 2) else a.T
    raise ValueError(f"audio must be (samples,) or (samples, channels), got shape {a.shape}")


def _as_audio(audio: np.ndarray) -> np.ndarray:
    """(n,) or (n, c) int16/float -> (c, n) float32 in [-1, 1], c in {1, 2}."""
    a = _channels_first(audio)
    if a.shape[0] > 2:
        a = a[:2]
    if np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float32) / float(np.iinfo(a.dtype).max)
    return np.ascontiguousarray(np.clip(a, -1.0, 1.0), dtype=np.float32)


class _Streamed:
    """A streamed mono recording (anything with len() and read(start, n), such as
    avatar.speech.recorded.RecordingAudio) seen as a (1, n) array that is only ever sliced."""

    def __init__(self, audio):
        self.audio, self.shape = audio, (1, len(audio))

    def __getitem__(self, key):
        if not isinstance(key, tuple):      # [:2]: the channels (there is one)
            return self
        cols = key[1]
        start, stop, _ = cols.indices(self.shape[1])
        return self.audio.read(start, stop - start)[None]


class _AudioStream:
    """Audio (as write_mp4 takes it) read out at `out_rate` in blocks: converted and resampled
    one second at a time through one libswresample context, so memory stays flat whatever the
    length. Past the end it reads silence."""

    BLOCK = 1.0   # seconds of input per resampling step

    def __init__(self, audio: np.ndarray, rate: int, out_rate: int):
        a = _Streamed(audio) if hasattr(audio, "read") and not isinstance(audio, np.ndarray) else _channels_first(audio)
        self.src, self.rate, self.out_rate = a[:2], int(rate), int(out_rate)
        self.channels = self.src.shape[0]
        self.length = int(round(self.src.shape[1] * self.out_rate / self.rate))   # samples at out_rate
        self.pos = 0                      # input samples consumed
        self.buf = np.zeros((self.channels, 0), np.float32)
        self.resampler = None
        self.flushed = False

    def _more(self) -> bool:
        """Resample the next input block into buf; False once everything is out."""
        import av

        if self.flushed:
            return False
        layout = "mono" if self.channels == 1 else "stereo"
        if self.resampler is None and self.rate != self.out_rate:
            self.resampler = av.AudioResampler(format="fltp", layout=layout, rate=self.out_rate)
        step = max(1, int(self.BLOCK * self.rate))
        block = _as_audio(self.src[:, self.pos:self.pos + step]) if self.pos < self.src.shape[1] else None
        self.pos += step
        if self.resampler is None:   # same rate: no resampling
            if block is None:
                self.flushed = True
                return False
            out = [block]
        elif block is None:
            out = [f.to_ndarray() for f in self.resampler.resample(None)]
            self.flushed = True
        else:
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block.T).reshape(1, -1), format="flt",
                                               layout=layout)
            frame.sample_rate = self.rate
            out = [f.to_ndarray() for f in self.resampler.resample(frame)]
        self.buf = np.concatenate([self.buf, *out], axis=1).astype(np.float32, copy=False)
        return True

    def read(self, n: int) -> np.ndarray:
        """The next n samples (c, n) float32 at out_rate (silence past the end)."""
        n = max(0, int(n))
        while self.buf.shape[1] < n and self._more():
            pass
        out, self.buf = self.buf[:, :n], self.buf[:, n:]
        if out.shape[1] < n:
            out = np.pad(out, ((0, 0), (0, n - out.shape[1])))
        return out


class _AudioTrack:
    """An audio stream fed with (c, n) float32 blocks at AUDIO_RATE; encodes whole 1024-sample frames.
    codec: "aac", or "flac" (lossless 16-bit: scene segments, whose audio is encoded again when
    they are joined; FLAC costs a fraction of AAC's encoding time)."""

    def __init__(self, container, channels: int, bit_rate: int | None = None, codec: str = "aac"):
        import av

        self.av = av
        self.channels = channels
        self.layout = "mono" if channels == 1 else "stereo"
        self.stream = container.add_stream(codec, rate=AUDIO_RATE, layout=self.layout)
        if codec == "aac":
            # 128k mono: at 96k the encoder adds up to 2 dB to the true peak of loudness-normalised speech
            self.stream.bit_rate = bit_rate or (128_000 if channels == 1 else 160_000)
        self.container = container
        self.pending = np.zeros((channels, 0), np.float32)
        self.pts = 0      # samples sent to the encoder
        self.pushed = 0   # samples received

    def push(self, samples: np.ndarray) -> None:
        if samples.shape[1] == 0:
            return
        self.pushed += samples.shape[1]
        self.pending = np.concatenate([self.pending, samples.astype(np.float32)], axis=1)
        whole = self.pending.shape[1] // AUDIO_CHUNK * AUDIO_CHUNK
        for i in range(0, whole, AUDIO_CHUNK):
            self._encode(self.pending[:, i:i + AUDIO_CHUNK])
        self.pending = self.pending[:, whole:]

    def _encode(self, block: np.ndarray) -> None:
        frame = self.av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format="fltp", layout=self.layout)
        frame.sample_rate = AUDIO_RATE
        frame.pts = self.pts
        frame.time_base = Fraction(1, AUDIO_RATE)
        self.container.mux(self.stream.encode(frame))
        self.pts += block.shape[1]

    def finish(self) -> None:
        if self.pending.shape[1]:
            self._encode(self.pending)
        self.container.mux(self.stream.encode(None))


def _fit_audio(audio: np.ndarray, n: int) -> np.ndarray:
    """Trim or pad (with silence) to exactly n samples."""
    if audio.shape[1] >= n:
        return audio[:, :n]
    return np.pad(audio, ((0, 0), (0, n - audio.shape[1])))


def _ahead(frames: Iterable[np.ndarray], depth: int) -> Iterator[np.ndarray]:
    """The same frames in the same order, each drawn from `frames` up to `depth` frames early
    in one helper thread: making the next frames (render, compose: numpy and OpenCV release
    the GIL) overlaps encoding this one (x264 runs with the GIL released). An error raised
    while making a frame is raised here, at that frame; closing this generator stops the helper."""
    it = iter(frames)
    if depth <= 0:
        yield from it
        return
    end = object()
    with ThreadPoolExecutor(1, thread_name_prefix="avatar-frames") as pool:
        pending = deque(pool.submit(next, it, end) for _ in range(depth))
        try:
            while (frame := pending.popleft().result()) is not end:
                pending.append(pool.submit(next, it, end))
                yield frame
        finally:
            for f in pending:
                f.cancel()


# --------------------------------------------------------------------------- frames
def _i420_planes(i420: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y (h, w), U and V (h/2, w/2) planes of OpenCV's I420 layout ((h * 3/2, w) bytes)."""
    flat = i420.reshape(-1)
    q = h * w // 4
    return (flat[:h * w].reshape(h, w), flat[h * w:h * w + q].reshape(h // 2, w // 2),
            flat[h * w + q:h * w + 2 * q].reshape(h // 2, w // 2))


def _video_frame(i420: np.ndarray):
    """An av.VideoFrame (yuv420p) over our own I420 array (no copy; the frame keeps the array).
    Not VideoFrame.from_ndarray: encoding frames whose buffers PyAV allocated gave x264 streams
    that now and then differed for the same pictures (in bursts, with frames made in a helper
    thread or x264 on several threads; issue 11); over numpy arrays they did not."""
    import av

    return av.VideoFrame.from_numpy_buffer(i420, format="yuv420p")


def _to_i420(rgb: np.ndarray) -> np.ndarray:
    import cv2

    # OpenCV's RGB->I420 (BT.601, limited range, like swscale's default) is ~10x faster than PyAV's reformat;
    # each 2x2 block converts on its own, so an even-aligned rectangle converts to exactly its part of the frame
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420)


class PatchedFrame:
    """A frame as a static picture shared by many frames plus one changed rectangle (the presenter).

        PatchedFrame(base, (x0, y0), patch)   # base: Still; patch: RGB uint8 at even x0, y0, even size
        .rgb()                                # the whole RGB frame (a new array)

    write_mp4 converts only the patch to YUV and copies the base's YUV planes, made once
    per Still: no full-frame RGB copy or colour conversion per frame. The encoded
    pictures are identical to encoding .rgb()."""

    __slots__ = ("base", "x", "y", "patch")

    def __init__(self, base: "Still", origin: tuple[int, int], patch: np.ndarray):
        x, y = origin
        ph, pw = patch.shape[:2]
        h, w = base.shape[:2]
        if (x | y | pw | ph) & 1 or x < 0 or y < 0 or x + pw > w or y + ph > h:
            raise ValueError(f"PatchedFrame: patch {pw}x{ph} at ({x}, {y}) is not even-aligned inside {w}x{h}")
        self.base, self.x, self.y, self.patch = base, x, y, patch

    @property
    def shape(self) -> tuple[int, ...]:
        return self.base.shape

    def rgb(self) -> np.ndarray:
        out = self.base.rgb.copy()
        ph, pw = self.patch.shape[:2]
        out[self.y:self.y + ph, self.x:self.x + pw] = self.patch
        return out

    def video_frame(self, previous=None):
        """An av.VideoFrame (yuv420p) of this frame. `previous`: the VideoFrame of a PatchedFrame
        with the same base and rectangle, refilled in place (only the rectangle is written)."""
        vf = previous or _video_frame(self.base.i420().copy())   # its own copy: the rectangle is written into it
        ph, pw = self.patch.shape[:2]
        if ph and pw:
            parts = _i420_planes(_to_i420(self.patch), ph, pw)
            for k, (plane, part) in enumerate(zip(vf.planes, parts)):
                s = 1 if k == 0 else 2
                view = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
                view[self.y // s:self.y // s + part.shape[0], self.x // s:self.x // s + part.shape[1]] = part
        return vf


class Still:
    """A static RGB picture (read-only, even size) and its I420 conversion, made once when first needed."""

    __slots__ = ("rgb", "_i420")

    def __init__(self, rgb: np.ndarray):
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] & 1 or rgb.shape[1] & 1:
            raise ValueError(f"Still: an even-sized (H, W, 3) uint8 RGB picture, got {rgb.shape} {rgb.dtype}")
        self.rgb, self._i420 = rgb, None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.rgb.shape

    def i420(self) -> np.ndarray:
        if self._i420 is None:
            self._i420 = _to_i420(self.rgb)
        return self._i420


# --------------------------------------------------------------------------- write
def write_mp4(path: str | Path, frames: Iterable[np.ndarray], *, fps: float, audio=None,
              sample_rate: int | None = None, metadata: dict | None = None,
              progress: Callable[[int], None] | None = None, crf: int = 23, preset: str = "veryfast",
              threads: int = 0, keyframes: Collection[int] = (), ahead: int = AHEAD,
              chapters: list[dict] | None = None, audio_codec: str = "aac") -> Path:
    """Encode RGB uint8 frames (H, W, 3) (or PatchedFrames) and optional audio into an H.264/AAC MP4
    (audio_codec "flac": lossless audio, for segments that concat_mp4 joins).

    Frames are consumed one at a time (constant memory). Odd frame sizes are cropped
    by one pixel to even sizes (yuv420p needs them). Audio is mono (n,) or stereo (n, 2),
    float in [-1, 1] or int16, at `sample_rate`, or a streamed mono recording read in blocks
    (anything with len() and read(start, n): avatar.speech.recorded.RecordingAudio); it is resampled to 48 kHz. The video and
    audio durations come out equal: when the audio outlasts the frames by more than half
    a frame, the last frame is repeated; then the audio is cut or padded with silence to
    the video length. `metadata` becomes container tags (title, comment, ... and custom
    keys). `progress(n)` is called after each frame with the number of frames written.
    `threads=0` lets x264 choose. `keyframes`: frame indices encoded as I-frames, e.g. the
    first frame after a crossfade, so no faint residue of the faded-out picture lingers in
    static areas (x264 skips blocks whose change is below its quantiser). `ahead`: frames
    drawn from `frames` early, in a helper thread, while x264 encodes (0: none), so give each
    frame its own array, not one buffer refilled in place (a list or any of our generators
    do). The encoded stream does not depend on it. Returns the path.
    """
    import av

    path = Path(path)
    rate = _fps_fraction(fps)
    track = None
    if audio is not None:
        if not sample_rate:
            raise ValueError("write_mp4: sample_rate is required with audio")
        track_audio = _AudioStream(audio, int(sample_rate), AUDIO_RATE)   # resampled as it is encoded
    with atomic_path(path) as tmp, closing(_ahead(frames, ahead)) as it:
        with av.open(str(tmp), "w", format="mp4", options=_container_options(metadata)) as out:
            _set_metadata(out, metadata)
            vs = None
            n = 0
            made = _VideoFrames()
            last = None
            for frame in it:
                if isinstance(frame, PatchedFrame):
                    if vs is not None and frame.shape[:2] != (h, w):
                        frame = frame.rgb()   # checked (and cropped) like any array below
                else:
                    frame = np.asarray(frame)
                    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                        raise ValueError(f"write_mp4: frames must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
                if vs is None:
                    h, w = frame.shape[0] & ~1, frame.shape[1] & ~1
                    if h < 2 or w < 2:
                        raise ValueError(f"write_mp4: frame too small {frame.shape}")
                    vs = add_video_stream(out, w, h, rate, crf=crf, preset=preset, threads=threads)
                    if audio is not None:
                        track = _AudioTrack(out, track_audio.channels, codec=audio_codec)
                if frame.shape[0] != h or frame.shape[1] != w:   # never a PatchedFrame
                    if frame.shape[0] < h or frame.shape[1] < w or frame.shape[0] > h + 1 or frame.shape[1] > w + 1:
                        raise ValueError(f"write_mp4: frame {n} is {frame.shape[1]}x{frame.shape[0]}, "
                                         f"expected {w}x{h} like the first frame")
                    frame = frame[:h, :w]
                _encode_video(out, vs, frame, n, key=n in keyframes, frames=made)
                last = frame
                n += 1
                if track is not None:   # keep the audio interleaved with the video
                    track.push(track_audio.read(int(round(n * AUDIO_RATE / rate)) - track.pushed))
                if progress is not None:
                    progress(n)
            if vs is None:
                raise ValueError("write_mp4: no frames")
            if track is not None:
                needed = _frames_for(track_audio.length, rate)
                while n < needed:   # audio outlasts the frames: hold the last frame
                    _encode_video(out, vs, last, n, frames=made)
                    n += 1
                    if progress is not None:
                        progress(n)
                track.push(track_audio.read(int(round(n * AUDIO_RATE / rate)) - track.pushed))   # cut or padded
                track.finish()
            out.mux(vs.encode(None))
            if chapters:
                out.set_chapters(chapters)
    return path


def _frames_for(samples: int, rate: Fraction) -> int:
    """Video frames that `samples` of AUDIO_RATE audio last (write_mp4 holds the last frame until then)."""
    return max(1, int(round(samples / AUDIO_RATE * rate)))


def segment_audio(audio, sample_rate: int, frames: int, fps: float) -> tuple[bytes, int]:
    """(the audio track write_mp4 gives a segment of `frames` frames with this audio, as a FLAC-in-MP4
    file in memory; the segment's frame count). Decoded, it holds the same samples as the
    segment's own track (the same resampling, FLAC is lossless): the joined track can be made
    from it before the segment's video is done (concat_mp4's `audio`)."""
    import io

    import av

    rate = _fps_fraction(fps)
    stream = _AudioStream(audio, int(sample_rate), AUDIO_RATE)
    frames = max(int(frames), _frames_for(stream.length, rate))
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        track = _AudioTrack(out, stream.channels, codec="flac")
        track.push(stream.read(int(round(frames * AUDIO_RATE / rate))))
        track.finish()
    return buf.getvalue(), frames


@functools.lru_cache(maxsize=1)
def x264_asm() -> dict[str, str]:
    """x264 options that keep its output the same from run to run: on a CPU with AVX-512, x264's
    code up to AVX2 (`asm=AVX2`, what such a CPU also has), elsewhere its own choice ({}).

    With its AVX-512 code, the x264 in PyAV's wheel (core 165) gave another stream for the same
    pictures in about 1 encode in 10 inside a process that had rendered other videos before
    (bursts of 2-7 encodes with one of a dozen other streams; 37 of 400), and never in a fresh
    process; under MALLOC_PERTURB_ or with asm=AVX2, 300 of 300 were the same stream. That is
    a read of memory x264 never wrote (valgrind cannot see it: it has no AVX-512). It cost
    md5 comparisons in the tests their stability, and a cached scene could differ from the same
    scene rendered again (bench/bench_determinism.py). The AVX2 code takes about 6% more x264
    CPU time (x264 alone on the 1080p demo's frames; the README's benchmark table)."""
    try:
        from numpy.core._multiarray_umath import __cpu_features__ as cpu
    except ImportError:   # numpy 2 moved it
        try:
            from numpy._core._multiarray_umath import __cpu_features__ as cpu
        except ImportError:
            return {}
    return {"x264-params": "asm=AVX2"} if cpu.get("AVX512F") and cpu.get("AVX2") and cpu.get("FMA3") else {}


def add_video_stream(out, w: int, h: int, rate: Fraction, *, crf: int = 23, preset: str = "veryfast", threads: int = 0):
    """The H.264 stream write_mp4 encodes into (bench/bench_speed.py times x264 alone with it).
    x264 runs frame threads, as ffmpeg's command line does: PyAV's default, sliced threads, took
    1.6x the time on 2 cores (bench_speed's breakdown). x264's output is deterministic for a
    given thread count (threads=0: chosen from the core count, so it can differ between machines)
    and, on a CPU with AVX-512, only without its AVX-512 code (x264_asm)."""
    vs = out.add_stream("libx264", rate=rate)
    vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
    vs.codec_context.options = {"crf": str(crf), "preset": preset, **x264_asm()}
    vs.codec_context.thread_count = threads
    vs.codec_context.thread_type = "FRAME"
    vs.codec_context.colorspace = 6      # SMPTE 170M (BT.601), what the conversion uses
    vs.codec_context.color_range = 1     # limited ("tv") range
    return vs


class _VideoFrames:
    """The av.VideoFrames write_mp4 sends to x264. A PatchedFrame on the same Still and rectangle
    as the one before reuses the previous VideoFrame and writes only its rectangle, so the static
    picture is not copied per frame. That is safe because the frame is free again when encode()
    returns: libavcodec hands it to libx264 inside avcodec_send_frame (PyAV drains the packets
    right after), and x264 copies every input picture into its own frames before it returns."""

    def __init__(self):
        self.key, self.vf = None, None

    def __call__(self, frame: np.ndarray | PatchedFrame):
        if not isinstance(frame, PatchedFrame):
            self.key = self.vf = None
            return _video_frame(_to_i420(frame))
        key = (frame.base, frame.x, frame.y, frame.patch.shape[:2])
        same = self.key is not None and key[0] is self.key[0] and key[1:] == self.key[1:]
        self.vf = frame.video_frame(self.vf if same else None)
        self.key = key                 # holds the Still, so its id is never reused while compared
        return self.vf


def _encode_video(out, vs, frame: np.ndarray | PatchedFrame, index: int, key: bool = False,
                  frames: _VideoFrames | None = None) -> None:
    import av

    vf = (frames or _VideoFrames())(frame)
    vf.pts = index
    vf.pict_type = av.video.frame.PictureType.I if key else av.video.frame.PictureType.NONE
    out.mux(vs.encode(vf))


# --------------------------------------------------------------------------- read
def read_frames(path: str | Path) -> Iterator[np.ndarray]:
    """Decode the video stream as RGB uint8 frames, one at a time."""
    import av

    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            yield f.to_ndarray(format="rgb24")


def read_audio(path: str | Path | bytes, rate: int = AUDIO_RATE) -> tuple[np.ndarray, int]:
    """Decode the first audio stream (of a file, or of a file's bytes) as (channels, n) float32 at `rate`."""
    import av

    with _open_media(path) as c:
        if not c.streams.audio:
            return np.zeros((1, 0), np.float32), rate
        s = c.streams.audio[0]
        layout = "mono" if s.codec_context.channels == 1 else "stereo"
        res = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        chunks = []
        for f in c.decode(s):
            chunks += [r.to_ndarray() for r in res.resample(f)]
        chunks += [r.to_ndarray() for r in res.resample(None)]
    ch = 1 if layout == "mono" else 2
    return (np.concatenate(chunks, axis=1) if chunks else np.zeros((ch, 0), np.float32)), rate


def probe(path: str | Path) -> dict:
    """Facts about an MP4: sizes, rates, durations (from packets/decoded samples), tags, atom order."""
    import av

    path = Path(path)
    info: dict = {"path": str(path), "format": None, "tags": {}, "video_codec": None, "audio_codec": None}
    with av.open(str(path)) as c:
        info["format"] = c.format.name
        info["tags"] = dict(c.metadata)
        v = c.streams.video[0] if c.streams.video else None
        a = c.streams.audio[0] if c.streams.audio else None
        if v is not None:
            info.update(video_codec=v.codec_context.name, width=v.codec_context.width,
                        height=v.codec_context.height, pix_fmt=v.codec_context.pix_fmt,
                        fps=float(v.average_rate or v.guessed_rate or 0))
        if a is not None:
            info.update(audio_codec=a.codec_context.name, sample_rate=a.codec_context.sample_rate,
                        channels=a.codec_context.channels)
        frames = samples = 0    # one pass: count video packets, decode audio for its sample count
        streams = [s for s in (v, a) if s is not None]
        for pkt in c.demux(*streams) if streams else ():
            if pkt.stream.type == "video":
                frames += pkt.pts is not None and pkt.size > 0
            else:
                samples += sum(f.samples for f in pkt.decode())
    if v is not None:
        info["frames"] = frames
        info["video_duration"] = frames * (1.0 / info["fps"] if info["fps"] else 0.0)
    if a is not None:
        info["audio_samples"] = samples
        info["audio_duration"] = samples / info["sample_rate"]
    info["duration"] = max(info.get("video_duration", 0.0), info.get("audio_duration", 0.0))
    info["faststart"] = _moov_before_mdat(path)
    return info


def _moov_before_mdat(path: Path) -> bool:
    """Walk the top-level MP4 atoms: True when 'moov' comes before 'mdat'."""
    with open(path, "rb") as f:
        while True:
            head = f.read(8)
            if len(head) < 8:
                return False
            size, kind = int.from_bytes(head[:4], "big"), head[4:8]
            if size == 1:
                size = int.from_bytes(f.read(8), "big") - 8
            if kind == b"moov":
                return True
            if kind == b"mdat":
                return False
            if size < 8:
                return False
            f.seek(size - 8, 1)


def _open_media(src: str | Path | bytes):
    import io

    import av

    return av.open(io.BytesIO(src)) if isinstance(src, bytes) else av.open(str(src))


# --------------------------------------------------------------------------- concat
def _video_signature(path: Path):
    import av

    with av.open(str(path)) as c:
        if not c.streams.video:
            raise AvatarError("segment has no video stream", path=path)
        v = c.streams.video[0].codec_context
        s = c.streams.video[0]
        return (v.name, v.width, v.height, v.pix_fmt, bytes(v.extradata or b""),
                Fraction(s.average_rate or 0), s.time_base)


def concat_mp4(segments: list[str | Path], out: str | Path, *, metadata: dict | None = None,
               audio_filter: AudioFilter | None = None, chapters: list[dict] | None = None,
               audio: tuple[bytes | None, list[int], Fraction] | None = None) -> Path:
    """Join MP4 segments in order into `out` (atomic).

    audio_filter(joined) -> mixed blocks: the final mix (music, loudness) before encoding.
    joined() iterates the whole joined track, (channels, n) float32 blocks at AUDIO_RATE (one
    per segment), and may be called more than once; the filter returns the mixed track as an
    iterable of blocks (any sizes; it may change the channel count).
    chapters: PyAV chapter dicts (start, end, time_base, metadata={"title": ...}).
    audio: (joined_audio(...) made ahead with this audio_filter, the segments' frame counts
    and the frame rate it was made for): its packets are copied in; when the segments turn
    out to have other frame counts or rate, the track is made again from the segments.

    When all segments share their video codec parameters (same encoder settings, size,
    rate: what write_mp4 makes for one presentation), the H.264 packets are copied as
    they are with shifted timestamps: no video re-encoding. The audio is decoded, cut or
    padded to each segment's video length and encoded again as one AAC stream
    (joined_audio): copying AAC packets would carry each segment's encoder priming and end
    padding into the joined track (a small gap and an A/V drift at every join). Segments
    that differ in video parameters are decoded and re-encoded instead.
    """
    import av

    segments = [Path(s) for s in segments]
    out = Path(out)
    if not segments:
        raise ValueError("concat_mp4: no segments")
    sigs = [_video_signature(s) for s in segments]
    if any(s != sigs[0] for s in sigs[1:]):
        return _concat_reencode(segments, out, metadata=metadata, audio_filter=audio_filter, chapters=chapters)

    fps = sigs[0][5]
    frames = [_video_frames(s) for s in segments]
    if audio is None or list(audio[1]) != frames or audio[2] != fps:
        audio = (joined_audio(segments, frames, fps, audio_filter), frames, fps)
    track = audio[0]
    with atomic_path(out) as tmp, contextlib.ExitStack() as stack:
        dst = stack.enter_context(av.open(str(tmp), "w", format="mp4", options=_container_options(metadata)))
        _set_metadata(dst, metadata)
        with av.open(str(segments[0])) as first:
            vs = dst.add_stream_from_template(first.streams.video[0])
        packets = iter(())
        if track is not None:
            src = stack.enter_context(_open_media(track))
            sa = src.streams.audio[0]
            as_ = dst.add_stream_from_template(sa)
            packets = (p for p in src.demux(sa) if p.size)
        pending = None
        offset = 0          # in the video stream's time base
        frames_done = 0
        for seg in segments:
            with av.open(str(seg)) as s:
                sv = s.streams.video[0]
                tb = sv.time_base
                step = int(round(1 / (fps * tb)))     # one frame in stream ticks
                count = 0
                for pkt in s.demux(sv):
                    if not pkt.size:
                        continue   # flush packet
                    pts = pkt.pts or 0
                    dts = pkt.dts if pkt.dts is not None else pts
                    pkt.stream = vs
                    pkt.pts, pkt.dts, pkt.time_base = pts + offset, dts + offset, tb
                    dst.mux(pkt)
                    count += 1
                offset += count * step
                frames_done += count
            # this segment's audio: packets that start before its end (the audio stays interleaved)
            end = Fraction(frames_done) / fps
            while pending is not None or (pending := next(packets, None)) is not None:
                if pending.pts is not None and pending.pts * pending.time_base >= end:
                    break
                pending.stream = as_
                dst.mux(pending)
                pending = None
        for pkt in ([pending] if pending is not None else []) + list(packets):
            pkt.stream = as_
            dst.mux(pkt)
        if chapters:
            dst.set_chapters(chapters)
    return out


def joined_audio(sources: list[str | Path | bytes], frames: list[int], fps: Fraction,
                 audio_filter: AudioFilter | None = None) -> bytes | None:
    """The joined audio track of segments with these frame counts, as an AAC-in-MP4 file in
    memory (None when no segment has audio and there is no filter): each source (a segment,
    or its segment_audio() made ahead) decoded, cut or padded to its video length, through
    `audio_filter` (see concat_mp4), encoded once."""
    import io

    import av

    channels = _audio_channels(sources)
    mixed = None
    if audio_filter is not None:   # the filter sees the whole track (the video, not a scene), in blocks
        from avatar.audio.blocks import Reader

        mixed = Reader(audio_filter(lambda: _joined_audio(sources, channels or 1, frames, fps)), channels or 1)
        channels = mixed.channels
    if not channels:
        return None
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as dst:
        track = _AudioTrack(dst, channels)
        done = 0
        for src, n in zip(sources, frames):
            done += n
            end = int(round(done * AUDIO_RATE / fps))
            track.push(_segment_audio(src, channels, end - track.pushed) if mixed is None
                       else mixed.take(end - track.pushed))
        track.finish()
    return buf.getvalue()


AudioFilter = Callable[[Callable[[], Iterator[np.ndarray]]], Iterable[np.ndarray]]


def _video_frames(seg: Path) -> int:
    import av

    with av.open(str(seg)) as c:
        return sum(1 for p in c.demux(video=0) if p.size)


def _joined_audio(segments: list[Path | bytes], channels: int, frames: list[int], fps: Fraction) -> Iterator[np.ndarray]:
    """Every segment's audio cut or padded to its video length, end to end: (channels, n) blocks at
    AUDIO_RATE, one per segment (decoded as it is reached)."""
    done, pushed = 0, 0
    for seg, n in zip(segments, frames):
        done += n
        end = int(round(done * AUDIO_RATE / fps))
        yield _segment_audio(seg, channels, end - pushed)
        pushed = end


def _audio_channels(segments: list[Path | bytes]) -> int:
    """Channels of the joined track: 0 when no segment has audio, else the most any segment has."""
    channels = 0
    for seg in segments:
        with _open_media(seg) as c:
            if c.streams.audio:
                channels = max(channels, c.streams.audio[0].codec_context.channels)
    return channels


def _segment_audio(seg: Path | bytes, channels: int, n: int) -> np.ndarray:
    """A segment's decoded audio (silence if it has none) as (channels, n) at AUDIO_RATE."""
    a = read_audio(seg)[0]
    if a.shape[0] < channels:
        a = np.repeat(a[:1], channels, axis=0)
    return _fit_audio(a, n)


def _concat_reencode(segments: list[Path], out: Path, *, metadata: dict | None,
                     audio_filter: AudioFilter | None = None, chapters: list[dict] | None = None) -> Path:
    import av

    with av.open(str(segments[0])) as c:
        fps = Fraction(c.streams.video[0].average_rate)
        w, h = c.streams.video[0].codec_context.width, c.streams.video[0].codec_context.height

    def frames():
        import cv2

        for seg in segments:
            for f in read_frames(seg):
                if f.shape[:2] != (h, w):
                    f = cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA)
                yield f

    audio = None
    channels = _audio_channels(segments)
    if channels or audio_filter is not None:
        parts = []
        for seg in segments:
            with av.open(str(seg)) as c:
                seg_fps = Fraction(c.streams.video[0].average_rate)
            parts.append(_segment_audio(seg, channels or 1, int(round(_video_frames(seg) * AUDIO_RATE / seg_fps))))
        joined = parts
        if audio_filter is not None:   # this path holds the whole track anyway (segments that differ)
            joined = list(audio_filter(lambda: iter(parts)))
        audio = np.concatenate(joined, axis=1).T
    return write_mp4(out, frames(), fps=fps, audio=audio, sample_rate=AUDIO_RATE, metadata=metadata,
                     chapters=chapters)
