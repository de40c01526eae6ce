"""Loudness of the final mix: integrated loudness to a target, true peak under a ceiling.

    audio, report = normalize(audio, 48000, target=-16.0, true_peak=-1.0)

Measured over the whole video (never per scene, so scenes keep their relative levels)
with FFmpeg's EBU R128 meter (ebur128: ITU-R BS.1770 integrated loudness, 4x oversampled
true peak). One linear gain brings the loudness to the target. Where that gain pushes
the true peak over the ceiling, FFmpeg's alimiter (look-ahead, latency compensated, run
4x oversampled so it holds the inter-sample peaks too) pins the peaks under it, and the
gain in front of it is raised by what the limiting took off the loudness (secant steps,
measured again each round): a few rounds settle within 0.05 LU.
"""
from __future__ import annotations

import logging

import numpy as np

from avatar.audio.filters import measure, run_filter

log = logging.getLogger("avatar")
MIN_SECONDS = 0.4        # BS.1770 gating blocks are 400 ms: shorter audio has no integrated loudness
_ROUNDS = 5
_LIMITER = "level=false:latency=true:attack=5:release=50"
OVERSAMPLE = 4
# dB the mix stays under the ceiling for the encoder. Lossy coding adds to the true peak, and not
# predictably: FFmpeg's AAC at 128k mono added 0.0 to 2.2 dB to the limited speech of the demo at
# -16 and -14 LUFS (most at a word's sharp onset), so the encoded file's true peak is not guaranteed.
CODEC_HEADROOM = 0.5


def _gain(db: float) -> float:
    return float(10 ** (db / 20))


def _limit(audio: np.ndarray, rate: int, ceiling: float) -> np.ndarray:
    """Peaks held under `ceiling` dBTP: alimiter run 4x oversampled, so it sees the inter-sample peaks."""
    from scipy.signal import resample_poly

    up = resample_poly(audio, OVERSAMPLE, 1, axis=1).astype(np.float32)
    held, _ = run_filter(up, rate * OVERSAMPLE, "alimiter", f"limit={max(_gain(ceiling), 0.0625):.6f}:{_LIMITER}")
    return resample_poly(held[:, :up.shape[1]], 1, OVERSAMPLE, axis=1).astype(np.float32)[:, :audio.shape[1]]


def normalize(audio: np.ndarray, rate: int, target: float = -16.0, true_peak: float = -1.0
              ) -> tuple[np.ndarray, dict]:
    """(c, n) float32 -> the same at `target` LUFS, true peak CODEC_HEADROOM under `true_peak` dBTP.

    Returns (audio, report): {"input": LUFS, "output": LUFS, "true_peak": dBTP, "limited": bool},
    or {"skipped": why} for silence and audio under 0.4 s (returned unchanged)."""
    m = measure(audio, rate) if audio.shape[1] >= MIN_SECONDS * rate else {"I": float("-inf")}
    if not np.isfinite(m["I"]) or m["I"] <= -70:   # ebur128 reports -70 LUFS (its gate) for silence
        return audio, {"skipped": "silent or shorter than 0.4 s"}
    out, report = _normalize(audio, rate, target, true_peak - CODEC_HEADROOM, m)
    if abs(report.get("output", target) - target) > 0.5:
        log.warning(f"loudness: the mix reaches {report['output']:.1f} LUFS, not {target:g}, under the "
                    f"{true_peak:g} dBTP ceiling (very peaky audio); lower the target or raise true_peak")
    return out, report


def _normalize(audio: np.ndarray, rate: int, target: float, ceiling: float, measured: dict
               ) -> tuple[np.ndarray, dict]:
    """The mix at `target` under `ceiling`; `measured` is the input's meter reading."""
    before = measured["I"]
    out = audio * _gain(target - before)
    m = {"I": target, "TP": measured["TP"] + target - before}   # a gain moves both by as much: no new measure
    limited = m["TP"] > ceiling
    gain, last = target - before, None
    for _ in range(_ROUNDS if limited else 0):
        out = _limit(audio * _gain(gain), rate, ceiling - 0.1)   # the peaks pinned; loudness measured again
        m = measure(out, rate, peak=False)
        if abs(m["I"] - target) <= 0.05:
            break
        # the limiter takes part of every gain step back: step by the loudness-per-dB the last step gave
        slope = 1.0 if last is None else float(np.clip((m["I"] - last[1]) / (gain - last[0] or 1e-9), 0.2, 1.0))
        last = (gain, m["I"])
        gain += (target - m["I"]) / slope
    if limited:
        m["TP"] = measure(out, rate)["TP"]
    if m["TP"] > ceiling:   # still over: the ceiling wins over the loudness target
        out, m = out * _gain(ceiling - m["TP"]), {"I": m["I"] + ceiling - m["TP"], "TP": ceiling}
    return np.ascontiguousarray(out, np.float32), {"input": before, "output": m["I"], "true_peak": m["TP"],
                                                    "limited": limited}
