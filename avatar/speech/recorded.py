"""Recorded narration: the user's own audio file instead of a TTS voice.

`load_audio(path)` decodes any audio (or video) file PyAV can read (WAV, MP3, FLAC,
M4A/AAC, OGG, MP4...) to mono float32 at the file's own rate. `RecordedVoice` turns
the recording into a Speech at 22050 Hz (the Piper rate, so recorded and synthetic
scenes join without resampling): leading/trailing silence trimmed, clipping softened,
and, when a transcript is known, word and phoneme times from forced alignment with
pocketsphinx (avatar.speech.align). Without a transcript the
Speech has no words (so no captions), and a warning says so.
"""
from __future__ import annotations

import logging
import warnings
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


def load_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode the first audio stream of `path` -> (mono float32 in [-1, 1], sample rate).

    Raises AvatarError naming the file when it is missing, not decodable or has no audio.
    """
    import av

    path = Path(path)
    if not path.is_file():
        raise AvatarError("audio file not found", path=path, hint="check the voice.audio path")
    from avatar.limits import MAX_RECORDING_SECONDS, check_recording

    chunks: list[np.ndarray] = []
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
                    chunks.append(out.to_ndarray().mean(axis=0, dtype=np.float32))
                    samples += chunks[-1].size
                if samples > (MAX_RECORDING_SECONDS + 1) * sr:   # a header that lied about the length
                    check_recording(samples / sr, path)
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().mean(axis=0, dtype=np.float32))
    except AvatarError:
        raise
    except Exception as exc:  # PyAV raises many error types for broken files
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AvatarError(f"cannot decode audio ({first})", path=path,
                          hint="is it a valid WAV/MP3/FLAC/M4A file?") from None
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    del chunks
    if len(audio) == 0 or sr <= 0:
        raise AvatarError("the audio stream is empty", path=path, hint="record some narration")
    bad = ~np.isfinite(audio)
    if bad.any():   # float WAVs can hold NaN / Inf: silence them (in place)
        warnings.warn(f"{path}: {int(bad.sum())} invalid samples (NaN or infinite) replaced by silence",
                      stacklevel=3)
        audio[bad] = 0.0
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
    if peak > 0.99:
        clipped = float(np.mean(np.abs(audio) >= 0.99 * peak))
        if clipped > 0.001:
            warnings.warn(f"{path}: the recording clips ({clipped:.1%} of samples at full scale); "
                          "record at a lower level for cleaner sound", stacklevel=3)
        audio = audio * (0.97 / peak)
    db = _frame_db(audio, sr)
    loud = db.max() if db.size else -np.inf
    if loud < SILENCE_DB:
        raise AvatarError(f"the recording is silent (loudest part {loud:.0f} dBFS)", path=path,
                          hint="check the microphone level or the file")
    active = np.nonzero(db >= max(SILENCE_DB, loud - 40.0))[0]   # not empty: loud >= SILENCE_DB
    hop = _hop(sr)
    start = max(0, active[0] * hop - int(KEEP_MARGIN * sr))
    end = min(len(audio), (active[-1] + 1) * hop + int(KEEP_MARGIN * sr))
    return audio[start:end]


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
        """The prepared recording at OUTPUT_RATE."""
        from avatar.motion.features import resample

        audio, sr = load_audio(self.path)
        return prepare(resample(audio, sr, OUTPUT_RATE), OUTPUT_RATE, self.path)

    def synthesize(self, narration: str = "") -> Speech:
        audio = self.load()
        text = (self.spec.transcript or narration or "").strip()
        if not text:
            msg = f"{self.path}: no transcript, so no word timings and no captions (pass --transcript, or set voice.transcript in the script)"
            warnings.warn(msg, stacklevel=2)
            return Speech(audio, OUTPUT_RATE)
        from avatar.speech import markup
        from avatar.speech.align import align_transcript

        try:
            markup.parse(text)
        except markup.MarkupError as e:
            raise AvatarError(str(e), field="voice.transcript") from None
        return align_transcript(audio, OUTPUT_RATE, text)
