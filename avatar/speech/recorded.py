"""Recorded narration: the user's own audio file instead of a TTS voice.

`load_audio(path)` decodes any audio (or video) file PyAV can read (WAV, MP3, FLAC,
M4A/AAC, OGG, MP4...) to mono float32 at the file's own rate. `RecordedVoice` turns
the recording into a Speech at 22050 Hz (the Piper rate, so recorded and synthetic
scenes join without resampling): leading/trailing silence trimmed, clipping softened,
and, when a transcript is known, word and phoneme times from forced alignment with
pocketsphinx (avatar.speech.align). Without a transcript the
Speech has no words (so no captions), and a warning says so.

A recording longer than PIECE_SECONDS is never held whole (open_recording): it is decoded
to a temporary file, measured (peak, loudness), then cut in its pauses into pieces that are
prepared one by one into a second temporary file (a RecordingAudio). RecordedVoice.stream
returns a Speech over it; motion (avatar.motion.make_motion), alignment and the encoder
(avatar.video.mp4.write_mp4) read it piece by piece, so `say --audio` runs in flat memory.
"""
from __future__ import annotations

import logging
import math
import os
import tempfile
import warnings
import weakref
from pathlib import Path

import numpy as np

from avatar.errors import AvatarError
from avatar.speech import spec_path
from avatar.types import Speech

log = logging.getLogger(__name__)

OUTPUT_RATE = 22050           # Speech.sample_rate of recorded narration (= Piper's)
SILENCE_DB = -45.0            # frames quieter than this (dBFS, FRAME RMS) count as silence
KEEP_MARGIN = 0.15            # seconds of silence kept around the trimmed speech
FRAME = 0.02                  # seconds per loudness frame
PIECE_SECONDS = 30.0          # a longer recording is streamed in pieces at most this long, cut in pauses


def _decoded_blocks(path: Path):
    """(mono float32 block, sample rate) as the first audio stream of `path` decodes: the checks
    of load_audio (missing file, no audio, too long from the header or from the samples, broken)."""
    import av

    if not path.is_file():
        raise AvatarError("audio file not found", path=path, hint="check the voice.audio path")
    from avatar.limits import MAX_RECORDING_SECONDS, check_recording

    samples = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AvatarError("no audio stream in this file", path=path,
                                  hint="give a WAV, MP3, FLAC or M4A recording")
            stream = container.streams.audio[0]
            sr = int(stream.codec_context.sample_rate or stream.sample_rate)
            if container.duration:   # from the header: refused before decoding
                check_recording(container.duration / 1e6, path)
            # planar float, channels kept; mono = plain channel average (no gain above 1)
            resampler = av.AudioResampler(format="fltp", rate=sr)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    block = out.to_ndarray().mean(axis=0, dtype=np.float32)
                    samples += block.size
                    yield block, sr
                if samples > (MAX_RECORDING_SECONDS + 1) * sr:   # a header that lied about the length
                    check_recording(samples / sr, path)
            for out in resampler.resample(None):
                yield out.to_ndarray().mean(axis=0, dtype=np.float32), sr
    except AvatarError:
        raise
    except Exception as exc:  # PyAV raises many error types for broken files
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AvatarError(f"cannot decode audio ({first})", path=path,
                          hint="is it a valid WAV/MP3/FLAC/M4A file?") from None


def _warn_invalid(path: Path, count: int) -> None:
    if count:   # float WAVs can hold NaN / Inf: they were silenced
        warnings.warn(f"{path}: {count} invalid samples (NaN or infinite) replaced by silence", stacklevel=4)


def load_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode the first audio stream of `path` -> (mono float32 in [-1, 1], sample rate).

    Raises AvatarError naming the file when it is missing, not decodable or has no audio.
    """
    path = Path(path)
    chunks: list[np.ndarray] = []
    sr = 0
    for block, sr in _decoded_blocks(path):
        chunks.append(block)
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    del chunks
    if len(audio) == 0 or sr <= 0:
        raise AvatarError("the audio stream is empty", path=path, hint="record some narration")
    bad = ~np.isfinite(audio)
    if bad.any():   # silenced in place
        audio[bad] = 0.0
        _warn_invalid(path, int(bad.sum()))
    return audio, sr


def _hop(sr: int) -> int:
    return max(1, int(FRAME * sr))


def _frame_db(audio: np.ndarray, sr: int) -> np.ndarray:
    """Loudness (dBFS RMS) of each FRAME of the audio (one value for audio shorter than a frame)."""
    n = _hop(sr)
    k = len(audio) // n
    if k == 0:
        return np.array([20 * np.log10(np.sqrt(np.mean(audio ** 2)) + 1e-12)])
    frames = audio[: k * n].reshape(k, n)                      # a view: no copy of a long recording
    rms = np.sqrt(np.einsum("ij,ij->i", frames, frames, dtype=np.float64) / n)
    return 20 * np.log10(rms + 1e-12)


def prepare(audio: np.ndarray, sr: int, path: str | Path = "audio") -> np.ndarray:
    """Clip-safe, trimmed narration: peak kept below 1 (float files may exceed it), a warning
    when the recording clips, leading/trailing silence trimmed to KEEP_MARGIN.
    Silent audio -> AvatarError naming `path`."""
    audio = np.asarray(audio, np.float32)
    peak = max(float(audio.max()), -float(audio.min())) if audio.size else 0.0
    gain = _peak_gain(peak, lambda: int(np.count_nonzero(np.abs(audio) >= 0.99 * peak)), len(audio), path)
    if gain != 1.0:
        audio = audio * gain
    start, end = _speech_span(_frame_db(audio, sr), sr, len(audio), path)
    return audio[start:end]


def _peak_gain(peak: float, count_clipped, n: int, path, stacklevel: int = 4) -> float:
    """The gain that keeps the peak below 1: 0.97 / peak once it reaches 0.99, else 1. Then
    count_clipped() (samples at >= 0.99 of the peak) decides the warning that the recording clips."""
    if peak <= 0.99:
        return 1.0
    clipped = count_clipped() / max(n, 1)
    if clipped > 0.001:
        warnings.warn(f"{path}: the recording clips ({clipped:.1%} of samples at full scale); "
                      "record at a lower level for cleaner sound", stacklevel=stacklevel)
    return 0.97 / peak


def _speech_span(db: np.ndarray, sr: int, n: int, path) -> tuple[int, int]:
    """(start, end) samples of the speech in n samples whose FRAME loudness is `db` (dBFS), with
    KEEP_MARGIN of silence around it. Silent audio -> AvatarError naming `path`."""
    loud = db.max() if db.size else -np.inf
    if loud < SILENCE_DB:
        raise AvatarError(f"the recording is silent (loudest part {loud:.0f} dBFS)", path=path,
                          hint="check the microphone level or the file")
    active = np.nonzero(db >= max(SILENCE_DB, loud - 40.0))[0]   # not empty: loud >= SILENCE_DB
    hop = _hop(sr)
    return (max(0, active[0] * hop - int(KEEP_MARGIN * sr)),
            min(n, (active[-1] + 1) * hop + int(KEEP_MARGIN * sr)))


class RecordingAudio:
    """A long prepared recording at `sample_rate`, held in an anonymous temporary file (deleted
    when closed or when the process ends) and read in pieces, so memory does not grow with its
    length. It stands in for the audio array of a Speech: len() is its sample count, read(start, n)
    one stretch, pieces() the stretches it was cut into at pauses (motion is made piece by piece),
    and np.asarray(it) the whole array (what code that needs one gets; that does hold it all)."""

    dtype = np.dtype(np.float32)
    ndim = 1

    def __init__(self, file, length: int, sample_rate: int, bounds: list[int]):
        self._file, self._length, self.sample_rate = file, int(length), int(sample_rate)
        self._closer = weakref.finalize(self, file.close)   # closed (and so deleted) when dropped
        self.bounds = list(bounds)          # piece k is samples bounds[k]..bounds[k + 1]

    def __len__(self) -> int:
        return self._length

    @property
    def shape(self) -> tuple[int]:
        return (self._length,)

    def read(self, start: int, n: int) -> np.ndarray:
        """Samples start..start+n (fewer at the end) as float32."""
        start = max(0, int(start))
        n = max(0, min(int(n), self._length - start))
        data = os.pread(self._file.fileno(), 4 * n, 4 * start)   # no shared file position: thread-safe
        return np.frombuffer(data, np.float32).copy()

    def pieces(self):
        """(start time in seconds, float32 audio) of each piece, in order."""
        for a, b in zip(self.bounds, self.bounds[1:]):
            yield a / self.sample_rate, self.read(a, b - a)

    def __array__(self, dtype=None, copy=None):
        a = self.read(0, self._length)
        return a if dtype is None else a.astype(dtype, copy=False)

    def close(self) -> None:
        self._closer()


def _frame_power(pending: np.ndarray, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean square of each whole hop-long frame of `pending`, the samples left over)."""
    k = len(pending) // hop
    frames = pending[: k * hop].reshape(k, hop)
    return np.einsum("ij,ij->i", frames, frames, dtype=np.float64) / hop, pending[k * hop:]


def _cuts(db: np.ndarray, hop: int, sr: int, start: int, end: int) -> list[int]:
    """Sample positions start < c1 < ... < end cutting start..end into pieces of at most
    PIECE_SECONDS, each cut in the quietest 0.3 s (the middle of a pause) of the second half of
    its piece's span."""
    smooth = np.convolve(db, np.ones(15) / 15, mode="same")     # 15 frames = 0.3 s
    cuts, s = [], start
    while end - s > PIECE_SECONDS * sr:
        lo = (s + int(PIECE_SECONDS / 2 * sr)) // hop
        hi = (s + int(PIECE_SECONDS * sr)) // hop
        k = lo + int(np.argmin(smooth[lo:hi]))
        s = k * hop + hop // 2
        cuts.append(s)
    return cuts


def open_recording(path: str | Path) -> np.ndarray | RecordingAudio:
    """The prepared recording (trimmed, peak kept below 1: see prepare) at OUTPUT_RATE.

    A recording of at most PIECE_SECONDS: an array, exactly load_audio + resample + prepare.
    A longer one is streamed, never held whole: one pass decodes it to a temporary file at its
    own rate measuring its peak and loudness, then it is cut in pauses into pieces of at most
    PIECE_SECONDS, and each piece is scaled, resampled and appended to a second temporary file:
    a RecordingAudio. Pieces are resampled apart (they join in silence)."""
    from avatar.motion.features import resample

    path = Path(path)
    raw = tempfile.TemporaryFile(prefix="avatar-recording-")
    try:
        sr, n, peak, invalid = 0, 0, 0.0, 0
        power, pending = [], np.zeros(0, np.float32)
        for block, sr in _decoded_blocks(path):
            bad = ~np.isfinite(block)
            if bad.any():
                block[bad] = 0.0
                invalid += int(bad.sum())
            if block.size:
                peak = max(peak, float(np.abs(block).max()))
            raw.write(block.tobytes())
            n += block.size
            p, pending = _frame_power(np.concatenate([pending, block]), _hop(sr))
            power.append(p)
        _warn_invalid(path, invalid)
        if n == 0 or sr <= 0:
            raise AvatarError("the audio stream is empty", path=path, hint="record some narration")
        source = RecordingAudio(raw, n, sr, [0, n])
        if n <= PIECE_SECONDS * sr:   # one piece: in memory, as it always was
            return prepare(resample(np.asarray(source), sr, OUTPUT_RATE), OUTPUT_RATE, path)
        return _stream(source, np.concatenate(power), peak, path)
    finally:
        raw.close()


def _stream(source: RecordingAudio, power: np.ndarray, peak: float, path: Path) -> RecordingAudio:
    """The long recording `source` prepared like prepare() does, piece by piece, into a RecordingAudio."""
    from avatar.motion.features import resample

    sr, hop = source.sample_rate, _hop(source.sample_rate)
    gain = _peak_gain(peak, lambda: sum(int(np.count_nonzero(np.abs(a) >= 0.99 * peak)) for _, a in _blocks(source)),
                      len(source), path, stacklevel=5)
    db = 20 * np.log10(np.sqrt(power) * gain + 1e-12)
    start, end = _speech_span(db, sr, len(source), path)
    # pieces start on the resampler's grid (multiples of `step` input samples = whole output
    # samples), so they join sample-exact, as one pass would put them
    step = sr // math.gcd(sr, OUTPUT_RATE)
    step = step if step <= FRAME * sr else 1     # an odd rate (no fine grid): pieces join within a sample
    start = start // step * step
    cuts = sorted({c // step * step for c in _cuts(db, hop, sr, start, end)} - {start})
    edges = [start, *cuts, end]
    out = tempfile.TemporaryFile(prefix="avatar-recording-")
    try:
        bounds = [0]
        for a, b in zip(edges, edges[1:]):
            piece = source.read(a, b - a)
            if gain != 1.0:
                piece *= np.float32(gain)
            piece = resample(piece, sr, OUTPUT_RATE)
            out.write(piece.tobytes())
            bounds.append(bounds[-1] + len(piece))
    except BaseException:
        out.close()
        raise
    return RecordingAudio(out, bounds[-1], OUTPUT_RATE, bounds)


def _blocks(audio: RecordingAudio, seconds: float = 10.0):
    step = max(1, int(seconds * audio.sample_rate))
    for a in range(0, len(audio), step):
        yield a, audio.read(a, step)


class RecordedVoice:
    """A Voice (avatar.types.Voice) that 'speaks' the user's recording (spec.audio).

    synthesize(narration) returns the recording as Speech at OUTPUT_RATE; with a
    transcript (spec.transcript, else the narration text when non-empty) its words and
    phonemes are timed on the recording by forced alignment (avatar.speech.align), and
    [next] markers in the narration are carried over too.
    """

    def __init__(self, spec, base_dir: Path | None = None):
        if spec.audio is None:
            raise AvatarError("the recorded voice needs an audio file", field="voice.audio",
                              hint="set voice.audio: narration.wav")
        self.spec, self.path = spec, spec_path(spec.audio, base_dir)
        self.sample_rate = OUTPUT_RATE

    def load(self) -> np.ndarray:
        """The prepared recording at OUTPUT_RATE, as one array."""
        return np.asarray(open_recording(self.path))

    def synthesize(self, narration: str = "") -> Speech:
        """The Speech, its audio one array (see stream() for a long recording)."""
        speech = self.stream(narration, _stacklevel=3)
        if isinstance(speech.audio, RecordingAudio):
            audio = speech.audio
            speech.audio = np.asarray(audio)
            audio.close()
        return speech

    def stream(self, narration: str = "", _stacklevel: int = 2) -> Speech:
        """The Speech; a recording longer than PIECE_SECONDS keeps its audio in a temporary file
        (a RecordingAudio: flat memory whatever its length), a shorter one is an array."""
        audio = open_recording(self.path)
        text = (self.spec.transcript or narration or "").strip()
        if not text:
            msg = f"{self.path}: no transcript, so no word timings and no captions (pass --transcript, or set voice.transcript in the script)"
            warnings.warn(msg, stacklevel=_stacklevel + 1)
            return Speech(audio, OUTPUT_RATE)
        from avatar.speech import markup
        from avatar.speech.align import align_transcript

        try:
            markup.parse(text)
        except markup.MarkupError as e:
            raise AvatarError(str(e), field="voice.transcript") from None
        speech = align_transcript(audio, OUTPUT_RATE, text)
        speech.audio = audio
        return speech
