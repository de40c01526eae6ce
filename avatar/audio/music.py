"""Music beds under the narration, ducked while someone speaks.

    bed = load_bed(path, cache_dir)              # (2, n) float32 at 48 kHz, decoded once per content
    gain = duck_gain(words, spec, n, rate)       # per-sample linear gain of the bed
    mixed = mix_music(narration, runs, cache_dir)

A bed plays over a run of consecutive scenes that share one music setting (the
presentation's `music:`, or a scene's own; `music: false` is none). The bed's level is
`volume` dB, `duck` dB lower while the narration speaks: the dip starts `attack` seconds
before a word and the bed comes back over `release` seconds after one (raised-cosine
ramps; gaps between words shorter than attack + release stay ducked). The bed fades in
and out over `fade` seconds at the ends of its run, loops (or stops, faded, at its end).

Decoded beds are cached under CACHE/music/ by the sha256 of the file's content, so the
scene segments never depend on the music: changing the bed redoes the final mix only.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avatar.errors import AvatarError
from avatar.files import atomic_path

RATE = 48000
CONTROL = 100   # ducking envelope rate (Hz), interpolated to samples


@dataclass
class Run:
    """One bed over [start, end) seconds of the video; words: (start, end) seconds on the video's timeline."""

    spec: object            # avatar.script.models.MusicSpec
    start: float
    end: float
    words: list[tuple[float, float]]


def decode(path: Path, rate: int = RATE) -> np.ndarray:
    """Any audio file PyAV reads -> (2, n) float32 at `rate`."""
    import av

    try:
        with av.open(str(path)) as c:
            if not c.streams.audio:
                raise AvatarError("has no audio stream", path=path, field="music.file")
            res = av.AudioResampler(format="fltp", layout="stereo", rate=rate)
            chunks = [r.to_ndarray() for f in c.decode(c.streams.audio[0]) for r in res.resample(f)]
            chunks += [r.to_ndarray() for r in res.resample(None)]
    except av.FFmpegError as e:
        raise AvatarError(f"cannot decode the music file ({e.strerror or e})", path=path, field="music.file",
                          hint="use mp3, wav, flac, m4a or ogg") from None
    bed = np.concatenate(chunks, axis=1) if chunks else np.zeros((2, 0), np.float32)
    if bed.shape[1] < rate // 10:
        raise AvatarError("the music file holds less than 0.1 s of audio", path=path, field="music.file")
    return bed.astype(np.float32, copy=False)


def load_bed(path: Path, cache_dir: Path | None = None, rate: int = RATE) -> np.ndarray:
    """The decoded bed, from CACHE/music/<sha256>-<rate>.npy when it was decoded before."""
    from avatar.build.plan import file_digest

    path = Path(path)
    if cache_dir is None:
        return decode(path, rate)
    try:
        cached = Path(cache_dir) / "music" / f"{file_digest(path)[:24]}-{rate}.npy"
    except OSError as e:
        raise AvatarError(f"cannot read the music file: {e.strerror or e}", path=path, field="music.file") from None
    if cached.is_file():
        try:
            return np.load(cached, mmap_mode="r")
        except (OSError, ValueError):
            cached.unlink(missing_ok=True)
    bed = decode(path, rate)
    cached.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(cached) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, bed)
    return bed


def _ramp(x: np.ndarray) -> np.ndarray:
    """0..1 -> a raised-cosine 0..1 (smooth at both ends)."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0.0, 1.0))


def duck_amount(words: list[tuple[float, float]], attack: float, release: float, seconds: float) -> np.ndarray:
    """0..1 at CONTROL Hz over `seconds`: 1 while a word sounds, ramping around each word."""
    n = max(1, int(np.ceil(seconds * CONTROL)) + 1)
    speaking = np.zeros(n, bool)
    for s, e in words:
        speaking[max(0, int(np.floor(s * CONTROL))):max(0, int(np.ceil(e * CONTROL))) + 1] = True
    on = np.flatnonzero(speaking)
    if not on.size:
        return np.zeros(n, np.float32)
    k = np.arange(n)
    pos = np.searchsorted(on, k)
    until = np.where(pos < on.size, on[np.minimum(pos, on.size - 1)] - k, np.inf) / CONTROL   # to the next word
    since = np.where(pos > 0, k - on[np.maximum(pos - 1, 0)], np.inf) / CONTROL               # after the last one
    up = 1 - until / attack if attack > 0 else (until == 0).astype(float)
    down = 1 - since / release if release > 0 else (since == 0).astype(float)
    bridged = until + since <= attack + release    # a short gap between words: stay down, no pumping
    return np.where(bridged, 1.0, _ramp(np.maximum(up, down))).astype(np.float32)


def _fade(n: int, rate: int, fade: float, stop: int | None = None) -> np.ndarray:
    """Gain 0..1 over n samples: fade in at the start, out at the end (and before `stop`, where a bed ends)."""
    g = np.ones(n, np.float32)
    f = int(round(fade * rate))
    if f <= 0 or n == 0:
        return g
    rising = _ramp(np.arange(1, f + 1) / f).astype(np.float32)
    k = min(f, n)
    g[:k] *= rising[:k]
    for end in {n, min(stop, n) if stop is not None else n}:
        k = min(f, end)
        g[end - k:end] *= rising[::-1][f - k:]
        g[end:] = 0.0 if end < n else g[end:]
    return g


def bed_track(run: Run, bed: np.ndarray, rate: int = RATE) -> np.ndarray:
    """The run's bed, looped or cut, at its level with ducking and fades: (2, n) float32."""
    spec = run.spec
    n = max(0, int(round((run.end - run.start) * rate)))
    src = bed[:, int(round(spec.start * rate)):]
    if src.shape[1] == 0:
        raise AvatarError(f"music.start {spec.start:g} s is past the end of the bed "
                          f"({bed.shape[1] / rate:.1f} s)", field="music.start")
    bed_end = None
    if spec.loop:
        reps = -(-n // src.shape[1])
        out = np.tile(src, (1, reps))[:, :n] if reps > 1 else np.array(src[:, :n])
    else:
        out = np.zeros((2, n), np.float32)
        m = min(n, src.shape[1])
        out[:, :m] = src[:, :m]
        bed_end = m
    local = [(s - run.start, e - run.start) for s, e in run.words if e > run.start and s < run.end]
    duck = duck_amount(local, spec.attack, spec.release, n / rate)
    t = np.arange(n) / rate
    db = spec.volume + spec.duck * np.interp(t, np.arange(duck.size) / CONTROL, duck)
    gain = (10 ** (db / 20)).astype(np.float32) * _fade(n, rate, spec.fade, bed_end)
    return out * gain


def mix_music(narration: np.ndarray, runs: list[Run], cache_dir: Path | None, rate: int = RATE) -> np.ndarray:
    """narration (c, n) + every run's bed -> (2, n) float32 (no runs: narration unchanged)."""
    if not runs:
        return narration
    out = np.repeat(narration[:1], 2, axis=0) if narration.shape[0] == 1 else np.array(narration[:2])
    n = out.shape[1]
    for run in runs:
        a = int(round(run.start * rate))
        track = bed_track(run, load_bed(run.spec.file, cache_dir, rate), rate)[:, :max(0, n - a)]
        out[:, a:a + track.shape[1]] += track
    return out
