"""Loudness of the final mix: integrated loudness to a target, true peak under a ceiling, streamed.

    for block in loudness_stream(source, 48000, target=-16.0, true_peak=-1.0): ...
    audio, report = normalize(audio, 48000, target=-16.0, true_peak=-1.0)   # the same, in memory

Measured over the whole video (never per scene, so scenes keep their relative levels) in
two passes over the track, in bounded memory: `source()` gives the track's blocks and is
called twice.

1. A meter pass (avatar.audio.meter, ITU-R BS.1770: K-weighted energy and 4x oversampled
   true peak per 5 ms step) gives the integrated loudness and the peaks.
2. One linear gain brings the loudness to the target. Where that gain pushes a step's true
   peak over the ceiling, a limiter planned from the meter's summary pins it: each step's
   gain is the least that it and its neighbours allow, coming back up at RELEASE dB/s,
   linearly interpolated between step centres, so no sample of a loud step is raised
   above what that step allows (5 ms look-ahead, 5-10 ms attack). The loudness the
   limiting takes off is known from the same summary, so the gain in front of it is found
   before the second pass (bisection on the summary, 0.01 dB), and the second pass only
   applies gain and limiter to each block: no third pass, no re-measuring.
"""
from __future__ import annotations

import logging
from typing import Callable, Iterable, Iterator

import numpy as np

from avatar.audio.meter import STEP, Meter, integrated

log = logging.getLogger("avatar")
MIN_SECONDS = 0.4        # BS.1770 gating blocks are 400 ms: shorter audio has no integrated loudness
RELEASE = 100.0          # dB/s the limiter's gain comes back up at most (6 dB in 60 ms)
MARGIN = 0.2             # dB the limiter aims under the ceiling (its true-peak meter is not the checker's)
MAX_BOOST = 20.0         # dB the gain may rise over the unlimited gain to make up for limiting
# dB the mix stays under the ceiling for the encoder. Lossy coding adds to the true peak, and not
# predictably: FFmpeg's AAC at 128k mono added 0.0 to 2.2 dB to the limited speech of the demo at
# -16 and -14 LUFS (most at a word's sharp onset), so the encoded file's true peak is not guaranteed.
CODEC_HEADROOM = 0.5

Source = Callable[[], Iterable[np.ndarray]]


def _gain(db: float) -> float:
    return float(10 ** (db / 20))


def _held(need: np.ndarray) -> np.ndarray:
    """Per-step limiter gain from the gain each step allows: at most what it and its neighbours
    allow (so the interpolation between step centres never raises a loud step), then coming
    back up at RELEASE dB/s at most (a running minimum of need - slope, plus the slope)."""
    db = 20 * np.log10(np.maximum(need, 1e-12))
    db = np.lib.stride_tricks.sliding_window_view(np.concatenate([[0.0], db, [0.0]]), 3).min(1)
    slope = RELEASE * STEP * np.arange(db.size)
    return 10 ** (np.minimum(slope + np.minimum.accumulate(db - slope), 0.0) / 20)


def _mean_square(g: np.ndarray) -> np.ndarray:
    """Mean of the squared gain over each step, the gain linear from step centre to step centre."""
    m1 = (np.concatenate([g[:1], g[:-1]]) + g) / 2
    m2 = (np.concatenate([g[1:], g[-1:]]) + g) / 2
    return ((m1 * m1 + m1 * g + g * g) + (g * g + g * m2 + m2 * m2)) / 6


class Plan:
    """What the second pass applies: a gain, and a per-step limiter gain (None: no limiting)."""

    def __init__(self, energy: np.ndarray, peak: np.ndarray, step: int, target: float, ceiling: float):
        self.step = step
        self.input = integrated(energy, step)
        self.db = target - self.input
        self.limit: np.ndarray | None = None
        top = float(peak.max()) if peak.size else 0.0
        self.true_peak = 20 * np.log10(top) + self.db if top > 0 else float("-inf")
        self.output = target
        if self.true_peak <= ceiling:
            return
        aim = _gain(ceiling - MARGIN)

        def loudness(db: float) -> tuple[float, np.ndarray]:
            g = _held(np.minimum(1.0, aim / np.maximum(peak * _gain(db), 1e-12)))
            return integrated(energy * _gain(db) ** 2 * _mean_square(g), step), g

        lo, hi = self.db, self.db + MAX_BOOST      # the gain that reaches the target lies between
        if loudness(hi)[0] < target:
            lo = hi
        while hi - lo > 0.01:
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if loudness(mid)[0] < target else (lo, mid)
        self.db = lo
        self.output, self.limit = loudness(lo)
        self.true_peak = min(self.true_peak, ceiling - MARGIN)

    def apply(self, block: np.ndarray, start: int) -> np.ndarray:
        """The block that starts at sample `start`, with the gain and the limiter."""
        out = block * np.float32(_gain(self.db))
        if self.limit is None:
            return out
        n, s = block.shape[1], self.step
        first, last = max(0, start // s - 1), min(self.limit.size, (start + n) // s + 2)
        centres = (np.arange(first, last) + 0.5) * s
        g = np.interp(np.arange(start, start + n), centres, self.limit[first:last])
        return out * g.astype(np.float32)

    def report(self) -> dict:
        return {"input": self.input, "output": self.output, "true_peak": self.true_peak,
                "limited": self.limit is not None}


def plan(source: Source, rate: int, target: float, true_peak: float) -> Plan | None:
    """The meter pass over `source()`: the Plan, or None for silence and audio under 0.4 s."""
    meter = Meter(rate)
    for block in source():
        meter.push(block)
    energy, peak = meter.result()
    if meter.samples < MIN_SECONDS * rate:
        return None
    p = Plan(energy, peak, meter.step, target, true_peak - CODEC_HEADROOM)
    if not np.isfinite(p.input) or p.input <= -70:
        return None
    if abs(p.output - target) > 0.5:
        log.warning(f"loudness: the mix reaches {p.output:.1f} LUFS, not {target:g}, under the "
                    f"{true_peak:g} dBTP ceiling (very peaky audio); lower the target or raise true_peak")
    return p


def loudness_stream(source: Source, rate: int, target: float = -16.0, true_peak: float = -1.0,
                    report: dict | None = None) -> Iterator[np.ndarray]:
    """The blocks of `source()` at `target` LUFS, true peak CODEC_HEADROOM under `true_peak` dBTP.
    source is called twice (meter, then gain); silence and audio under 0.4 s pass unchanged.
    report, when given, is filled as normalize() returns it."""
    p = plan(source, rate, target, true_peak)
    if report is not None:
        report.update(p.report() if p is not None else {"skipped": "silent or shorter than 0.4 s"})
    start = 0
    for block in source():
        yield block if p is None else p.apply(block, start)
        start += block.shape[1]


def normalize(audio: np.ndarray, rate: int, target: float = -16.0, true_peak: float = -1.0
              ) -> tuple[np.ndarray, dict]:
    """(c, n) float32 -> the same at `target` LUFS, true peak CODEC_HEADROOM under `true_peak` dBTP.

    Returns (audio, report): {"input": LUFS, "output": LUFS, "true_peak": dBTP, "limited": bool}
    (output and true_peak as planned from the meter's summary), or {"skipped": why} for silence
    and audio under 0.4 s (returned unchanged)."""
    report: dict = {}
    out = list(loudness_stream(lambda: [audio], rate, target, true_peak, report))   # one block
    return np.ascontiguousarray(out[0], np.float32), report
