"""Idle and expressive motion on top of any mouth track: blinks, head sway, brow raises.

Deterministic for a seed. Blinks are not scaled by expression_scale (they are not an
expression); head and brows are. still=True removes all head motion.
"""
from __future__ import annotations

import numpy as np

from avatar.motion.visemes import is_stressed
from avatar.types import Motion, Speech

BLINK_GAP = (2.0, 6.0)        # s between blink starts
BLINK_DURATION = (0.15, 0.25) # s
HEAD_AMPLITUDE = (2.0, 1.4, 1.0)   # deg yaw, pitch, roll of the slow sway
HEAD_FREQ = (0.05, 0.3)       # Hz range of the sway components
NOD_GAIN = 10.0               # deg of downward pitch per unit of (smoothed) mouth opening
BROW_GAP = 2.5                # s, at least this between brow raises
BROW_MIN_WORD = 0.3           # s, only (stressed) words at least this long get a raise
BROW_LONG_WORD = 0.45         # s, when the phonemes carry no stress marks: words this long
EDGE_FADE = 0.5               # s, head motion fades in/out so scenes join at the photo's pose


def blink_track(n: int, fps: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / fps
    out = np.zeros(n)
    tb = rng.uniform(0.6, 2.5)
    while tb < n / fps:
        dur = rng.uniform(*BLINK_DURATION)
        peak = tb + 0.4 * dur
        x = t - tb
        closing = np.sin(0.5 * np.pi * np.clip(x / (0.4 * dur), 0, 1))
        opening = 0.5 * (1 + np.cos(np.pi * np.clip((t - peak) / (0.6 * dur), 0, 1)))
        shape = np.where(t <= peak, closing, opening) * ((x >= 0) & (x <= dur))
        out = np.maximum(out, shape)
        k = int(round(peak * fps))
        if 0 <= k < n:
            out[k] = 1.0                      # the lids always meet on one frame
        tb += rng.uniform(*BLINK_GAP)
    return out


def _smooth_noise(n: int, fps: float, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    t = np.arange(n) / fps
    f = rng.uniform(*HEAD_FREQ, size=3)
    ph = rng.uniform(0, 2 * np.pi, size=3)
    w = np.array([1.0, 0.6, 0.35])
    return amplitude * (w[:, None] * np.sin(2 * np.pi * f[:, None] * t + ph[:, None])).sum(0) / w.sum()


def _gaussian_smooth(x: np.ndarray, sigma_frames: float) -> np.ndarray:
    if sigma_frames <= 0 or len(x) == 0:
        return x
    r = int(3 * sigma_frames) + 1
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma_frames) ** 2)
    k /= k.sum()
    return np.convolve(np.pad(x, r, mode="edge"), k, mode="valid")


def brow_events(speech: Speech | None, rng: np.random.Generator) -> list[float]:
    """Start times of brow raises: starts of long words that carry primary stress, sparingly."""
    if speech is None:
        return []
    stress = [p.start for p in speech.phonemes if is_stressed(p.symbol)]
    if speech.words and stress:
        cand = [w.start for w in speech.words
                if w.end - w.start >= BROW_MIN_WORD and any(w.start - 0.05 <= s <= w.end for s in stress)]
    elif speech.words:              # phonemes without stress marks: the long words carry emphasis
        cand = [w.start for w in speech.words if w.end - w.start >= BROW_LONG_WORD]
    else:
        cand = stress
    out: list[float] = []
    for c in sorted(cand):
        if (not out or c - out[-1] >= BROW_GAP) and rng.random() < 0.6:
            out.append(c)
    return out


def brow_track(n: int, fps: float, events: list[float], rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / fps
    out = np.zeros(n)
    for c in events:
        amp = rng.uniform(0.5, 1.0)
        up = np.clip((t - c + 0.1) / 0.15, 0, 1)          # starts just before the word
        down = np.clip((t - c - 0.45) / 0.45, 0, 1)
        shape = np.sin(0.5 * np.pi * up) ** 2 * (1 - np.sin(0.5 * np.pi * down) ** 2)
        out = np.maximum(out, amp * shape)
    return out


def add_idle(mouth: np.ndarray, speech: Speech | None, fps: float, *, seed: int = 0,
             still: bool = False, expression_scale: float = 1.0) -> Motion:
    """Wrap a (T, 2) mouth track into a Motion with blinks, head sway and brow raises."""
    mouth = np.asarray(mouth, np.float32).reshape(-1, 2)
    n = len(mouth)
    rng = np.random.default_rng(seed)
    blink = blink_track(n, fps, rng)
    brows = brow_track(n, fps, brow_events(speech, rng), rng)
    head = np.stack([_smooth_noise(n, fps, rng, a) for a in HEAD_AMPLITUDE], axis=1)
    talk = _gaussian_smooth(mouth[:, 0].astype(np.float64), 0.25 * fps)
    head[:, 1] -= NOD_GAIN * talk + 1.2 * brows           # nod down while talking, lift on emphasis
    t = np.arange(n) / fps
    fade = np.clip(np.minimum(t, (n - 1) / fps - t) / EDGE_FADE, 0, 1) if n > 1 else np.zeros(n)
    head *= (np.sin(0.5 * np.pi * fade) ** 2)[:, None] * expression_scale
    if still:
        head[:] = 0.0
    brow = np.clip(brows * expression_scale, 0.0, 1.0)
    return Motion(fps=fps, mouth=mouth, head=head, blink=blink, brow=brow)
