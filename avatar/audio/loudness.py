"""Loudness of the final mix: integrated loudness to a target, true peak under a ceiling.

    audio, report = normalize(audio, 48000, target=-16.0, true_peak=-1.0)

Measured over the whole video (never per scene, so scenes keep their relative levels)
with FFmpeg's EBU R128 meter (ebur128: ITU-R BS.1770 integrated loudness, 4x oversampled
true peak). One linear gain brings the loudness to the target. Where that gain pushes
the true peak over the ceiling, FFmpeg's alimiter (look-ahead, latency compensated)
holds the peaks down and the gain is measured again, with the limit lowered by what
the last round overshot: a few rounds settle within 0.1 LU and under the ceiling.
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
    gained = audio * _gain(target - before)
    out, m = gained, measure(gained, rate)
    limit, limited = true_peak - 0.5, False   # the limiter sees samples; inter-sample peaks sit higher
    for _ in range(_ROUNDS):
        if m["TP"] <= true_peak:
            break
        if limited:
            limit -= m["TP"] - true_peak + 0.1
        limited = True
        out, _ = run_filter(gained, rate, "alimiter", f"limit={max(_gain(limit), 0.0625):.6f}:{_LIMITER}")
        out = out[:, :audio.shape[1]]
        out = out * _gain(target - measure(out, rate)["I"])
        m = measure(out, rate)
    if m["TP"] > true_peak:   # still over: the ceiling wins over the loudness target
        out = out * _gain(true_peak - m["TP"])
        m = measure(out, rate)
    if abs(m["I"] - target) > 0.5:
        log.warning(f"loudness: the mix reaches {m['I']:.1f} LUFS, not {target:g}, under the {true_peak:g} dBTP "
                    "ceiling (very peaky audio); lower the target or raise true_peak")
    return np.ascontiguousarray(out, np.float32), {"input": before, "output": m["I"], "true_peak": m["TP"],
                                                    "limited": limited}
