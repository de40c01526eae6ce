"""Viseme rig: timed phonemes -> per-frame mouth [open, width] with coarticulation.

Cohen-Massaro style: every phoneme has a dominance function that is flat over the
phoneme and decays exponentially before it (anticipation, slower) and after it
(carry-over, faster); the mouth at time t is the dominance-weighted mean of the
targets. On top, p/b/m and silences get a smooth closure envelope so the lips really
meet at a bilabial's centre and stay exactly closed (no quiver) in pauses.
Pure numpy, no state: the audio model uses it to make its training targets.
"""
from __future__ import annotations

import numpy as np

from avatar.motion.visemes import REAL_FIT, VISEMES, Viseme, viseme_for
from avatar.types import Phoneme

TAU_ANTICIPATE = 0.07   # s, dominance decay before a phoneme
TAU_CARRY = 0.05        # s, dominance decay after a phoneme
RAMP = 0.08             # s, silence closure ramp (raised cosine), inside the silence
LIP_RAMP = 0.05         # s, p/b/m closure ramp, into the neighbours
SILENCE_MIN = 0.12      # s, a gap at least this long closes the mouth completely
LONG_GAP = 0.25         # s, a word gap this long counts as a pause
TONGUE_SMOOTH = 0.025   # s, Gaussian smoothing of the tongue track (std)


def segments(phonemes: list[Phoneme]) -> list[tuple[float, float, Viseme]]:
    """(start, end, viseme) per phoneme: modifiers (ː, stress marks) extend the previous one,
    word gaps are transparent unless long."""
    out: list[tuple[float, float, Viseme]] = []
    for ph in phonemes:
        if ph.end < ph.start:
            continue
        v = viseme_for(ph.symbol)
        if v is None:
            if ph.symbol.strip() == "" and ph.end - ph.start >= LONG_GAP:
                out.append((ph.start, ph.end, VISEMES["sil"]))
            elif ph.symbol.strip() and out:   # a lone modifier such as "ː": lengthen the previous phoneme
                s, _, pv = out[-1]
                out[-1] = (s, max(ph.end, out[-1][1]), pv)
            continue
        out.append((ph.start, ph.end, v))
    return out


def _envelope(t: np.ndarray, lo: float, hi: float, ramp: float = RAMP) -> np.ndarray:
    """1 on [lo, hi], raised-cosine ramps of length `ramp` on both sides, 0 beyond."""
    d = np.maximum(lo - t, t - hi)
    d = np.clip(d / ramp, 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * d))


def viseme_weights(phonemes: list[Phoneme], n_frames: int, fps: float, lead: float | None = None,
                   tau_anticipate: float = TAU_ANTICIPATE, tau_carry: float = TAU_CARRY):
    """The rig as a linear map: (W (n, len(VISEMES)), open_gain (n,), width_gain (n,)) such that
    mouth[:, 0] = open_gain * (W @ opens), mouth[:, 1] = width_gain * (W @ widths) before the
    final clip at 0, with opens/widths the viseme targets in VISEMES order. W holds the
    normalised dominance weights; the gains hold the closure envelopes. This is what lets
    avatar.lips.rigfit fit the targets to real mouths by least squares.
    lead: seconds the mouth runs ahead of the phoneme times (default 0)."""
    n = int(n_frames)
    lead = lead or 0.0
    t = np.arange(n, dtype=np.float64) / float(fps) + lead
    segs = segments(phonemes)
    names = list(VISEMES)
    W = np.zeros((n, len(names)))
    if n == 0 or not segs:
        return W, np.zeros(n), np.zeros(n)
    den = np.full(n, 1e-4)                       # weak pull towards rest
    for s, e, v in segs:
        i0 = max(0, int(np.floor((s - lead - 8 * tau_anticipate) * fps)))
        i1 = min(n, int(np.ceil((e - lead + 8 * tau_carry) * fps)) + 1)
        if i1 <= i0:
            continue
        tt = t[i0:i1]
        dist = np.where(tt < s, (s - tt) / tau_anticipate, np.where(tt > e, (tt - e) / tau_carry, 0.0))
        dom = v.dominance * np.exp(-dist)
        W[i0:i1, names.index(v.name)] += dom
        den[i0:i1] += dom
    W /= den[:, None]

    # closure envelopes: silences (incl. before the first and after the last phoneme) and p/b/m
    shut = np.zeros(n)          # closes open and relaxes width
    lips = np.zeros(n)          # closes open only
    first, last = segs[0][0], max(e for _, e, _ in segs)
    shut = np.maximum(shut, _envelope(t, -np.inf, first - RAMP))
    shut = np.maximum(shut, _envelope(t, last + RAMP, np.inf))
    half_frame = 0.55 / fps

    def window(lo: float, hi: float, ramp: float, out: np.ndarray) -> None:
        i0 = max(0, int(np.floor((lo - lead - ramp) * fps)))
        i1 = min(n, int(np.ceil((hi - lead + ramp) * fps)) + 1)
        if i1 > i0:
            out[i0:i1] = np.maximum(out[i0:i1], _envelope(t[i0:i1], lo, hi, ramp))

    for s, e, v in segs:
        if v.name == "sil" and e - s >= SILENCE_MIN:
            window(s + RAMP, e - RAMP, RAMP, shut)
        elif v.closure:
            c, h = (s + e) / 2, max(0.3 * (e - s), half_frame)
            window(c - h, c + h, LIP_RAMP, lips)
    return W, 1.0 - np.maximum(shut, lips), 1.0 - shut


def viseme_targets(calibrated: bool = False) -> np.ndarray:
    """(len(VISEMES), 2) [open, width] targets in VISEMES order: the design table, or with
    calibrated=True its fit to real mouths (avatar.motion.visemes.REAL_FIT) where there is one."""
    table = REAL_FIT["targets"] if calibrated and REAL_FIT else {}
    return np.array([table.get(v.name, (v.open, v.width)) for v in VISEMES.values()], np.float64)


def _weights(phonemes: list[Phoneme], n_frames: int, fps: float, calibrated: bool):
    fit = REAL_FIT if calibrated and REAL_FIT else {"lead": 0.0, "tau_scale": 1.0}
    return viseme_weights(phonemes, n_frames, fps, fit["lead"], TAU_ANTICIPATE * fit["tau_scale"],
                          TAU_CARRY * fit["tau_scale"])


def mouth_track(phonemes: list[Phoneme], n_frames: int, fps: float, calibrated: bool = True) -> np.ndarray:
    """(n_frames, 2) float32 [open, width] sampled at t = i / fps. calibrated (the runtime rig):
    the viseme targets, lead and coarticulation time constants fitted to real speakers
    (avatar.motion.visemes.REAL_FIT); False: the design table at the phoneme times (what the
    synthetic training targets of the audio model use)."""
    W, g_open, g_width = _weights(phonemes, n_frames, fps, calibrated)
    mouth = W @ viseme_targets(calibrated)
    mouth[:, 0] *= g_open
    mouth[:, 1] *= g_width
    mouth[:, 0] = np.maximum(mouth[:, 0], 0.0)
    return mouth.astype(np.float32)


def tongue_track(phonemes: list[Phoneme], n_frames: int, fps: float, calibrated: bool = True) -> np.ndarray:
    """(n_frames,) float32 tongue in view (avatar.types.Motion.tongue), 0..1: the visemes'
    tongue targets (th, l, t d n, wide vowels) through the same dominance weights and
    timing as mouth_track, so it rises and falls smoothly with its phonemes (never jumps from
    one frame to the next), and it is 0 wherever the lips close (p b m, silences). The
    tongue is slower than the lips: the track is smoothed over TONGUE_SMOOTH seconds."""
    from scipy.ndimage import gaussian_filter1d

    W, g_open, _ = _weights(phonemes, n_frames, fps, calibrated)
    targets = np.array([v.tongue for v in VISEMES.values()], np.float64)
    track = (W @ targets) * g_open
    if len(track) > 1:
        track = gaussian_filter1d(track, TONGUE_SMOOTH * fps, mode="nearest")
    return np.clip(track, 0.0, 1.0).astype(np.float32)
