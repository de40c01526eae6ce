"""Audio features for the audio-to-mouth model (numpy only).

Everything works on 16 kHz mono audio (`SAMPLE_RATE`); `to_model_rate` resamples
any other rate first. Frames are 25 ms Hann windows every 10 ms (100 frames/s),
frame i centred at i * 10 ms, so a clip of n samples gives n // 160 + 1 frames.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

SAMPLE_RATE = 16000
HOP = 160                 # 10 ms
WIN = 400                 # 25 ms
N_FFT = 512
N_MELS = 80
FRAME_RATE = SAMPLE_RATE / HOP   # 100 feature frames per second
LOG_FLOOR = 1e-5                 # power floor: log-mel of digital silence


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited polyphase resampling, float32, not clipped (avatar.speech.audio.resample)."""
    from avatar.speech.audio import resample as polyphase

    return polyphase(audio, sr_in, sr_out, clip=False)


def to_model_rate(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono float32 at 16 kHz (stereo (n, c) arrays are averaged)."""
    a = np.asarray(audio, np.float32)
    if a.ndim == 2:
        a = a.mean(axis=1)
    return resample(a, sample_rate, SAMPLE_RATE)


def n_frames_for(n_samples: int) -> int:
    return n_samples // HOP + 1


@lru_cache(maxsize=4)
def mel_filterbank(n_mels: int = N_MELS, n_fft: int = N_FFT, sr: int = SAMPLE_RATE,
                   fmin: float = 40.0, fmax: float = 7600.0) -> np.ndarray:
    """(n_fft//2+1, n_mels) triangular HTK-mel filters, each normalised to unit area."""
    def hz2mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel2hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    edges = mel2hz(np.linspace(hz2mel(fmin), hz2mel(fmax), n_mels + 2))
    lo, mid, hi = edges[:-2], edges[1:-1], edges[2:]
    f = freqs[:, None]
    fb = np.maximum(0.0, np.minimum((f - lo) / (mid - lo), (hi - f) / (hi - mid)))
    fb /= np.maximum(fb.sum(axis=0, keepdims=True), 1e-8)
    return fb.astype(np.float32)


def _window() -> np.ndarray:
    window = np.zeros(N_FFT, np.float32)
    off = (N_FFT - WIN) // 2
    window[off:off + WIN] = np.hanning(WIN + 2)[1:-1]   # Hann without zero end points
    return window


def power_spectrogram(audio16k: np.ndarray, block: int = 6000) -> np.ndarray:
    """(T, N_FFT//2+1) power spectrum, T = len // HOP + 1 (centred frames, zero padded)."""
    return np.concatenate(list(_power_blocks(audio16k, block)))


def _power_blocks(audio16k: np.ndarray, block: int):
    """Power spectrum in blocks of `block` frames (long audio never builds one big frame matrix,
    nor a padded copy of itself: each block pads only its own samples)."""
    a = np.asarray(audio16k, np.float32)
    n = n_frames_for(len(a))
    half = N_FFT // 2
    window = _window()
    for s in range(0, n, block):
        e = min(n, s + block)
        lo, hi = s * HOP - half, (e - 1) * HOP - half + N_FFT      # samples of frames s..e-1 (centred)
        local = np.zeros(hi - lo, np.float32)
        a0, a1 = max(lo, 0), min(hi, len(a))
        if a1 > a0:
            local[a0 - lo:a1 - lo] = a[a0:a1]
        frames = np.lib.stride_tricks.sliding_window_view(local, N_FFT)[::HOP][:e - s]   # a view, no copy
        spec = np.fft.rfft(frames * window, axis=-1)
        yield (spec.real ** 2 + spec.imag ** 2).astype(np.float32)


def log_mel(audio16k: np.ndarray) -> np.ndarray:
    """(T, N_MELS) natural-log mel power, floored at LOG_FLOOR (computed in blocks: flat memory)."""
    fb = mel_filterbank()
    out = np.empty((n_frames_for(len(audio16k)), fb.shape[1]), np.float32)
    row = 0
    for p in _power_blocks(audio16k, 6000):
        out[row:row + len(p)] = np.log(np.maximum(p @ fb, LOG_FLOOR))
        row += len(p)
    return out


def normalize(feats: np.ndarray) -> np.ndarray:
    """Per-clip normalisation used by the model: subtract each band's mean over the
    clip's louder half of frames (speech, not pauses: removes microphone/channel
    colour and loudness), divide by one global spread. Silence stays very negative."""
    f = np.asarray(feats, np.float32)
    if len(f) == 0:
        return f
    energy = f.mean(axis=1)
    speech = f[energy >= np.median(energy)]
    mu = speech.mean(axis=0, keepdims=True)
    sd = float(speech.std()) + 1e-3
    del speech
    out = f - mu                       # one copy; the rest in place
    out /= sd
    return np.clip(out, -8.0, 8.0, out=out)


def model_features(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Normalised log-mel features (T, N_MELS) at 100 frames/s of any audio."""
    return normalize(log_mel(to_model_rate(audio, sample_rate)))


def rms_envelope(audio: np.ndarray, sample_rate: int, n_frames: int, fps: float) -> np.ndarray:
    """RMS loudness per video frame (the naive 'mouth follows loudness' baseline),
    over one frame period centred on the frame's time i / fps."""
    a = np.asarray(audio, np.float32)
    if a.ndim == 2:
        a = a.mean(axis=1)
    out = np.zeros(n_frames, np.float32)
    for i in range(n_frames):
        s, e = int(max(0.0, (i - 0.5) / fps) * sample_rate), int((i + 0.5) / fps * sample_rate)
        seg = a[s:e]
        out[i] = float(np.sqrt(np.mean(seg ** 2))) if len(seg) else 0.0
    return out

