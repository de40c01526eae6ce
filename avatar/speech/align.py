"""Align a known transcript to recorded speech, aeneas-style.

The transcript is spoken by Piper (exact word and phoneme times), MFCCs of the
synthetic and the real audio are compared frame by frame (100 frames/s), dynamic time
warping (numpy, banded for long recordings) finds the best monotonic frame mapping,
and every synthetic word/phoneme time is carried through that mapping onto the real
audio.
"""
from __future__ import annotations

import functools

import numpy as np

from avatar.motion import features as F
from avatar.types import Phoneme, Speech, Word

BAND_SECONDS = 20.0     # DTW looks at most this far off the straight diagonal (long files)


def dtw_features(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """(T, 24) MFCC 1-12 + deltas, each coefficient normalised per clip (loudness-free)."""
    c = F.mfcc(audio, sample_rate, n_mfcc=13)[:, 1:]
    d = np.gradient(c, axis=0) if len(c) > 1 else np.zeros_like(c)
    x = np.concatenate([c, d], axis=1)
    return ((x - x.mean(0)) / (x.std(0) + 1e-6)).astype(np.float32)


def dtw_path(a: np.ndarray, b: np.ndarray, band: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Dynamic time warping between feature sequences a (N, d) and b (M, d), Euclidean
    cost, steps (1,1), (1,0), (0,1); path from (0, 0) to (N-1, M-1). With `band`, row i
    only considers columns within `band` of the straight diagonal (memory N x (2 band + 1))."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    n, m = len(a), len(b)
    if n == 0 or m == 0:
        raise ValueError("dtw_path needs two non-empty sequences")
    width = m if band is None else min(m, 2 * int(band) + 1 + int(np.ceil(m / n)))
    diag = np.round(np.arange(n) * ((m - 1) / max(n - 1, 1))).astype(int)
    lo = np.clip(diag - width // 2, 0, m - width)
    lo = np.maximum.accumulate(lo)
    acc = np.full((n, width), np.inf, np.float64)
    b2 = (b * b).sum(1)
    for i in range(n):
        cols = slice(lo[i], lo[i] + width)
        cost = np.sqrt(np.maximum((a[i] * a[i]).sum() + b2[cols] - 2.0 * b[cols] @ a[i], 0.0))
        if i == 0:
            acc[0] = np.cumsum(cost)
            continue
        prev = np.full(width + 1, np.inf)          # previous row at columns lo[i]-1 .. lo[i]+width-1
        shift = lo[i] - lo[i - 1]
        src = np.arange(-1, width) + shift         # index into previous row
        ok = (src >= 0) & (src < width)
        prev[ok] = acc[i - 1, src[ok]]
        best = np.minimum(prev[:-1], prev[1:])     # diagonal (j-1) and vertical (j)
        csum = np.cumsum(cost)
        acc[i] = csum + np.minimum.accumulate(best - np.concatenate([[0.0], csum[:-1]]))
    # backtrack
    i, j = n - 1, m - 1
    ii, jj = [i], [j]

    def val(r, c):
        k = c - lo[r]
        return acc[r, k] if 0 <= k < width else np.inf

    while i > 0 or j > 0:
        options = ((val(i - 1, j - 1), i - 1, j - 1), (val(i - 1, j), i - 1, j), (val(i, j - 1), i, j - 1))
        _, i, j = min((o for o in options if o[1] >= 0 and o[2] >= 0), key=lambda o: o[0])
        ii.append(i)
        jj.append(j)
    return np.array(ii[::-1]), np.array(jj[::-1])


def time_map(ref_audio: np.ndarray, ref_sr: int, audio: np.ndarray, sr: int):
    """A monotonic function t_ref (s) -> t (s) from the DTW of the two recordings."""
    fa, fb = dtw_features(ref_audio, ref_sr), dtw_features(audio, sr)
    band = int(BAND_SECONDS * F.FRAME_RATE) if len(fa) * len(fb) > 4_000_000 else None
    ia, ib = dtw_path(fa, fb, band=band)
    # each reference frame -> mean matched frame (monotonic since the path is)
    sums = np.bincount(ia, weights=ib, minlength=len(fa))
    counts = np.maximum(np.bincount(ia, minlength=len(fa)), 1)
    target = sums / counts / F.FRAME_RATE
    source = np.arange(len(fa)) / F.FRAME_RATE
    duration = len(audio) / float(sr)

    def f(t):
        return np.clip(np.interp(t, source, target), 0.0, duration)

    return f


def transfer(speech: Speech, audio: np.ndarray, sr: int) -> Speech:
    """Speech with `audio` and speech's word/phoneme/marker times mapped onto it by DTW."""
    f = time_map(speech.audio, speech.sample_rate, audio, sr)
    phonemes = [Phoneme(p.symbol, float(f(p.start)), float(f(p.end))) for p in speech.phonemes]
    words = [Word(w.text, float(f(w.start)), float(f(w.end))) for w in speech.words]
    markers = [(name, float(f(t))) for name, t in speech.markers]
    return Speech(np.asarray(audio, np.float32), int(sr), phonemes=phonemes, words=words, markers=markers)


@functools.lru_cache(maxsize=1)
def _reference_voice():
    """The bundled Piper voice that renders transcripts (one per process: it caches word phonemes)."""
    from avatar.script.models import VoiceSpec
    from avatar.speech.piper_voice import PiperVoice

    return PiperVoice(VoiceSpec(sentence_pause=0.1))


def align_transcript(audio: np.ndarray, sr: int, transcript: str, voice=None) -> Speech:
    """Speech of the real `audio` with the transcript's words and phonemes timed on it.
    `voice`: anything with .synthesize(text) -> Speech with timings (default: bundled Piper)."""
    if voice is None:
        voice = _reference_voice()
    return transfer(voice.synthesize(transcript), audio, sr)
