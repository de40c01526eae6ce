"""A streaming ITU-R BS.1770 meter: what the loudness pass needs, in one pass, in bounded memory.

    meter = Meter(48000)
    for block in blocks: meter.push(block)       # (c, n) float32, any block sizes
    energy, peak = meter.result()                # per 5 ms step: K-weighted energy, true peak
    integrated(energy, 240)                      # LUFS (gated, as BS.1770-4 / EBU R128)

The track is summarised per 5 ms step (STEP): the sum over channels of the squared
K-weighted samples, and the true peak (4x oversampled, the largest over channels). That
is 12 bytes per 5 ms (8.6 MB an hour), whatever the channel count, and it is enough both to
gate the integrated loudness (400 ms blocks every 100 ms are sums of 80 steps) and to plan a
limiter and the loudness it leaves (avatar.audio.loudness). Filter states carry across
blocks, so any split of the track gives the same figures.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

STEP = 0.005         # seconds per step of the summary
BLOCK_STEPS = 80     # a gating block: 400 ms
HOP_STEPS = 20       # a block every 100 ms (75 % overlap)
OVERSAMPLE = 4       # true peak: 4x oversampled (BS.1770-4 annex 2)
_TAPS = 32           # per phase of the interpolation filter (12 misses inter-sample peaks of broadband sound)
K_TAPS = 8192        # the K-weighting's impulse response (its 38 Hz high pass rings for about 0.1 s)
PIECE = 48000        # samples per FFT convolution


@lru_cache(maxsize=4)
def k_weighting(rate: int) -> np.ndarray:
    """BS.1770's K-weighting (a high shelf, then a high pass) at `rate`: two biquads, (b0, b1, b2, 1, a1, a2)."""
    k = np.tan(np.pi * 1681.974450955533 / rate)       # the shelf: +4 dB above about 1.7 kHz
    q, vh = 0.7071752369554196, 10 ** (3.999843853973347 / 20)
    vb = vh ** 0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf = [(vh + vb * k / q + k * k) / a0, 2 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0,
             1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]
    k = np.tan(np.pi * 38.13547087602444 / rate)        # the high pass at 38 Hz
    q = 0.5003270373238773
    a0 = 1 + k / q + k * k
    high = [1.0, -2.0, 1.0, 1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]
    return np.array([shelf, high])


@lru_cache(maxsize=4)
def k_response(rate: int) -> np.ndarray:
    """The K-weighting's impulse response, K_TAPS long (its tail is under 1e-15 there): applied
    by FFT convolution, so the meter needs numpy alone (scipy.signal takes 60 MB to import)."""
    x = np.zeros(K_TAPS)
    x[0] = 1.0
    for b0, b1, b2, _, a1, a2 in k_weighting(rate):
        y, x1, x2, y1, y2 = [], 0.0, 0.0, 0.0, 0.0
        for v in x.tolist():
            out = b0 * v + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2
            y.append(out)
            x1, x2, y1, y2 = v, x1, out, y1
        x = np.array(y)
    return x


@lru_cache(maxsize=1)
def _interpolator() -> np.ndarray:
    """(OVERSAMPLE, _TAPS) polyphase low-pass (Kaiser-windowed sinc, cut at the input's Nyquist
    frequency) that makes the 4x oversampled track."""
    n = OVERSAMPLE * _TAPS
    h = np.sinc((np.arange(n) - (n - 1) / 2) / OVERSAMPLE) * np.kaiser(n, 6.0)
    h *= OVERSAMPLE / h.sum()
    return np.ascontiguousarray(h.reshape(_TAPS, OVERSAMPLE).T, np.float32)   # [p, j]: tap j of phase p


class Meter:
    """Push (c, n) blocks of one track; result() gives the per-step summary (see the module docstring)."""

    def __init__(self, rate: int):
        self.rate, self.step = rate, int(round(rate * STEP))
        self._k = k_response(rate)
        self._spectra: dict[int, np.ndarray] = {}
        self._poly = _interpolator()
        self._tail = self._hist = None           # the K filter's ring-out, the interpolator's lead-in
        self._rest: np.ndarray | None = None      # samples of an unfinished step (K-weighted, raw)
        self._rest_raw: np.ndarray | None = None
        self._energy: list[np.ndarray] = []
        self._peak: list[np.ndarray] = []
        self.samples = 0

    def push(self, block: np.ndarray) -> None:
        block = np.asarray(block, np.float32)
        for i in range(0, block.shape[1], PIECE):   # long blocks in pieces: bounded FFT sizes
            self._push(block[:, i:i + PIECE])

    def _weighted(self, x: np.ndarray) -> np.ndarray:
        """K-weighted x (overlap-add: the ring-out of earlier samples carried in self._tail)."""
        n, t = x.shape[1], self._k.size
        size = 1 << (n + t - 2).bit_length()
        if size not in self._spectra:
            self._spectra[size] = np.fft.rfft(self._k, size)
        out = np.fft.irfft(np.fft.rfft(x, size, axis=1) * self._spectra[size], size, axis=1)[:, :n + t - 1]
        out[:, :t - 1] += self._tail
        self._tail = out[:, n:].copy()
        return out[:, :n]

    def _push(self, x: np.ndarray) -> None:
        if x.shape[1] == 0:
            return
        if self._tail is None:
            self._tail = np.zeros((x.shape[0], self._k.size - 1))
            self._hist = np.zeros((x.shape[0], _TAPS - 1), np.float32)
        kw = self._weighted(x)
        sq = (kw * kw).sum(0)
        # the oversampled track, phase by phase (the last _TAPS - 1 samples of the previous block lead in)
        padded = np.concatenate([self._hist, x], axis=1)
        self._hist = padded[:, -(_TAPS - 1):].copy()
        peak = np.abs(x).max(0)
        for ch in padded:
            for taps in self._poly:
                np.maximum(peak, np.abs(np.convolve(ch, taps, "valid")), out=peak)
        if self._rest is not None:
            sq, peak = np.concatenate([self._rest, sq]), np.concatenate([self._rest_raw, peak])
        whole = sq.size // self.step * self.step
        self._energy.append(sq[:whole].reshape(-1, self.step).sum(1))
        self._peak.append(peak[:whole].reshape(-1, self.step).max(1).astype(np.float32))
        self._rest, self._rest_raw = sq[whole:], peak[whole:]
        self.samples += x.shape[1]

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(energy, peak) per step; a last, partial step counts as one (its energy over fewer samples)."""
        energy, peak = list(self._energy), list(self._peak)
        if self._rest is not None and self._rest.size:
            energy.append(self._rest.sum(keepdims=True))
            peak.append(self._rest_raw.max(keepdims=True).astype(np.float32))
        if not energy:
            return np.zeros(0), np.zeros(0, np.float32)
        return np.concatenate(energy), np.concatenate(peak)


def integrated(energy: np.ndarray, step: int) -> float:
    """Gated integrated loudness (LUFS) from per-step energies: -inf when under one 400 ms block
    or silent. Only whole blocks count, as in BS.1770."""
    full = energy.size
    if full < BLOCK_STEPS:
        return float("-inf")
    c = np.concatenate([[0.0], np.cumsum(energy)])
    starts = np.arange(0, full - BLOCK_STEPS + 1, HOP_STEPS)
    z = (c[starts + BLOCK_STEPS] - c[starts]) / (BLOCK_STEPS * step)
    with np.errstate(divide="ignore"):
        loud = -0.691 + 10 * np.log10(z)
    z = z[loud > -70.0]                                  # the absolute gate
    if not z.size:
        return float("-inf")
    gate = -0.691 + 10 * np.log10(z.mean()) - 10.0       # the relative gate
    z = z[-0.691 + 10 * np.log10(z) > gate]
    return float(-0.691 + 10 * np.log10(z.mean()))
