"""Small operations on Speech values: silence, padding, joining, and atomic file output.

Every function returns a new Speech; times of phonemes, words and markers always
move with the audio. Silence added here is labelled with the pause phoneme "_" when
the speech carries phonemes, so phonemes keep covering the whole audio.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from avatar.files import atomic_path, write_text
from avatar.types import Phoneme, Speech, Word

PAUSE = "_"


def silence(seconds: float, sr: int) -> np.ndarray:
    """`seconds` of digital silence (float32) at `sr` Hz."""
    return np.zeros(max(0, int(round(seconds * sr))), np.float32)


def silent_speech(seconds: float, sr: int) -> Speech:
    """A Speech of pure silence, labelled with one pause phoneme."""
    audio = silence(seconds, sr)
    phonemes = [Phoneme(PAUSE, 0.0, len(audio) / sr)] if len(audio) else []
    return Speech(audio, sr, phonemes=phonemes)


def pad(speech: Speech, before: float = 0.0, after: float = 0.0) -> Speech:
    """Silence before and after the speech; all times shift by the leading silence."""
    sr = speech.sample_rate
    parts = [silent_speech(before, sr), speech, silent_speech(after, sr)]
    if not speech.phonemes:   # keep "no phoneme timings" meaning "none known"
        parts = [Speech(p.audio, sr) if p is not speech else p for p in parts]
    return join(parts)


def resample(audio: np.ndarray, sr_from: int, sr_to: int, *, clip: bool = True) -> np.ndarray:
    """The package's one resampler: band-limited polyphase (scipy.signal.resample_poly) along the
    last axis (samples; (channels, samples) works too), float32, clipped to [-1, 1] unless clip=False."""
    from math import gcd

    audio = np.asarray(audio, np.float32)
    if int(sr_from) != int(sr_to):
        from scipy.signal import resample_poly

        g = gcd(int(sr_from), int(sr_to))
        audio = resample_poly(audio, int(sr_to) // g, int(sr_from) // g, axis=-1).astype(np.float32)
    return np.clip(audio, -1.0, 1.0) if clip else audio


def _target_rate(speeches: list[Speech]) -> int:
    """The highest rate among pieces with sound (silence resamples losslessly)."""
    voiced = [s.sample_rate for s in speeches if len(s.audio) and np.any(s.audio)]
    return max(voiced) if voiced else speeches[0].sample_rate


def join(speeches: list[Speech]) -> Speech:
    """Concatenate speeches; times of later pieces are offset by the audio before them.

    Pieces at another sample rate are resampled to the highest rate among the
    pieces that hold sound. Adjacent pause phonemes are merged.
    """
    if not speeches:
        raise ValueError("join() needs at least one Speech")
    sr = _target_rate(speeches)
    audio, phonemes, words, markers = [], [], [], []
    offset = 0  # samples
    for s in speeches:
        a = resample(s.audio, s.sample_rate, sr)
        t0 = offset / sr
        for p in s.phonemes:
            start, end = p.start + t0, p.end + t0
            if phonemes and p.symbol == PAUSE and phonemes[-1].symbol == PAUSE and abs(phonemes[-1].end - start) < 1e-6:
                phonemes[-1] = replace(phonemes[-1], end=end)
            else:
                phonemes.append(Phoneme(p.symbol, start, end))
        words += [Word(w.text, w.start + t0, w.end + t0) for w in s.words]
        markers += [(name, t + t0) for name, t in s.markers]
        audio.append(a)
        offset += len(a)
    return Speech(np.concatenate(audio).astype(np.float32), sr, phonemes=phonemes, words=words, markers=markers)


def save_wav(path: str | Path, speech: Speech) -> Path:
    """Write 16-bit PCM WAV atomically (temp file + rename). Python's own file writes, so a
    full disk is an OSError (ENOSPC) naming the file, not a bare libsndfile "System error"."""
    import wave

    path = Path(path)
    audio = np.asarray(speech.audio)
    channels = 1 if audio.ndim == 1 else audio.shape[1]
    with atomic_path(path) as tmp, wave.open(str(tmp), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(int(speech.sample_rate))
        for i in range(0, len(audio), 1 << 16):   # in blocks: no full-length int16 copy
            w.writeframes(np.rint(np.clip(audio[i:i + (1 << 16)], -1.0, 1.0) * 32767).astype("<i2").tobytes())
    return path


def timings_dict(speech: Speech) -> dict:
    r = lambda t: round(float(t), 4)  # noqa: E731 - 0.1 ms is far below a sample block
    return {
        "sample_rate": speech.sample_rate,
        "duration": r(speech.duration),
        "words": [{"text": w.text, "start": r(w.start), "end": r(w.end)} for w in speech.words],
        "phonemes": [{"symbol": p.symbol, "start": r(p.start), "end": r(p.end)} for p in speech.phonemes],
        "markers": [{"name": n, "time": r(t)} for n, t in speech.markers],
    }


def write_timings_json(path: str | Path, speech: Speech) -> Path:
    """Words, phonemes and markers with their times (seconds), written atomically."""
    path = Path(path)
    write_text(path, json.dumps(timings_dict(speech), ensure_ascii=False, indent=1) + "\n")
    return path


def speak_markup(narration: str, sample_rate: int, sentence_pause: float,
                 speak: Callable[[str], Speech]) -> Speech:
    """Narration with [pause ...] / [next] markup -> one Speech, for any voice.

    `speak` turns plain text into Speech; pauses become real silence, markers keep their
    time, and `sentence_pause` separates text pieces that no explicit pause separates."""
    from avatar.errors import AvatarError
    from avatar.speech import markup

    try:
        segments = markup.parse(narration)
    except markup.MarkupError as e:
        raise AvatarError(str(e), field="narration") from e
    parts: list[Speech] = []
    spoke = False   # text already spoken, and no explicit pause since
    for seg in segments:
        if isinstance(seg, markup.Pause):
            parts.append(silent_speech(seg.seconds, sample_rate))
            spoke = False
        elif isinstance(seg, markup.Marker):
            parts.append(Speech(np.zeros(0, np.float32), sample_rate, markers=[(seg.name, 0.0)]))
        else:
            if spoke:
                parts.append(silent_speech(sentence_pause, sample_rate))
            parts.append(speak(seg))
            spoke = True
    if not parts:
        return Speech(np.zeros(0, np.float32), sample_rate)
    return join(parts)
