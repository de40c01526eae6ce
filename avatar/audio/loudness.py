"""Loudness of the final mix: integrated loudness to a target, true peak under a ceiling.

    audio, report = normalize(audio, 48000, target=-16.0, true_peak=-1.0)

Measured over the whole video (never per scene, so scenes keep their relative levels)
with FFmpeg's EBU R128 meter (ebur128: ITU-R BS.1770 integrated loudness, 4x oversampled
true peak). One linear gain brings the loudness to the target. Where that gain pushes
the true peak over the ceiling, FFmpeg's alimiter (look-ahead, latency compensated)
holds the peaks down and the gain is measured again, with the limit lowered by what
the last round overshot: a few rounds settle within 0.1 LU and under the ceiling. One
meter pass per round (a gain moves the true peak by the same number of dB).
"""
from __future__ import annotations

import logging

import numpy as np

from avatar.audio.filters import measure, run_filter

log = logging.getLogger("avatar")
MIN_SECONDS = 0.4        # BS.1770 gating blocks are 400 ms: shorter audio has no integrated loudness
_ROUNDS = 5
_LIMITER = "level=false:latency=true:attack=5:release=50"


def _gain(db: float) -> float:
    return float(10 ** (db / 20))


def normalize(audio: np.ndarray, rate: int, target: float = -16.0, true_peak: float = -1.0
              ) -> tuple[np.ndarray, dict]:
    """(c, n) float32 -> the same at `target` LUFS with its true peak at most `true_peak` dBTP.

    Returns (audio, report): {"input": LUFS, "output": LUFS, "true_peak": dBTP, "limited": bool},
    or {"skipped": why} for silence and audio under 0.4 s (returned unchanged)."""
    m = measure(audio, rate) if audio.shape[1] >= MIN_SECONDS * rate else {"I": float("-inf")}
    before = m["I"]
    if not np.isfinite(before) or before <= -70:   # ebur128 reports -70 LUFS (its gate) for silence
        return audio, {"skipped": "silent or shorter than 0.4 s"}
    gain = target - before
    out, tp = audio * _gain(gain), m["TP"] + gain   # a gain moves the true peak by as much: no new measure
    loud, limited = target, False
    limit = true_peak - 0.5   # the limiter sees samples; inter-sample peaks sit higher
    for _ in range(_ROUNDS):
        if tp <= true_peak:
            break
        if limited:
            limit -= tp - true_peak + 0.1
        limited = True
        held, _ = run_filter(audio * _gain(gain), rate, "alimiter",
                             f"limit={max(_gain(limit), 0.0625):.6f}:{_LIMITER}")
        m = measure(held[:, :audio.shape[1]], rate)
        out, tp = held[:, :audio.shape[1]] * _gain(target - m["I"]), m["TP"] + target - m["I"]
    if tp > true_peak:   # still over: the ceiling wins over the loudness target
        out, loud, tp = out * _gain(true_peak - tp), target + true_peak - tp, true_peak
    if abs(loud - target) > 0.5:
        log.warning(f"loudness: the mix reaches {loud:.1f} LUFS, not {target:g}, under the {true_peak:g} dBTP "
                    "ceiling (very peaky audio); lower the target or raise true_peak")
    return np.ascontiguousarray(out, np.float32), {"input": before, "output": loud, "true_peak": tp,
                                                    "limited": limited}
