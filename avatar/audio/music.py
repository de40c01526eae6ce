"""Music beds under the narration, ducked while someone speaks.

    bed = load_bed(path, cache_dir)              # (2, n) float32 at 48 kHz, decoded once per content
    amount = duck_amount(words, attack, release, seconds)   # 0..1 at CONTROL Hz
    for block in music_stream(narration_blocks, runs, cache_dir): ...   # block by block
    mixed = mix_music(narration, runs, cache_dir)             # the same, in memory

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
from typing import Iterable, Iterator

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


def _fade_at(i: np.ndarray, n: int, rate: int, fade: float, stop: int | None = None) -> np.ndarray:
    """Gain 0..1 at samples `i` of an n-sample run: fade in at the start, out at the end (and
    before `stop`, where a bed ends; silent after it)."""
    f = int(round(fade * rate))
    if f <= 0 or n == 0:
        return np.ones(i.size, np.float32)
    g = _ramp((i + 1) / f)
    for end in {n, min(stop, n) if stop is not None else n}:
        g = g * np.where(i < end, _ramp((end - i) / f), 0.0)
    return g.astype(np.float32)


class Bed:
    """A run's bed, looped or cut, at its level with ducking and fades, made block by block:
    bed.block(a, b) is samples [a, b) of the run, (2, b - a) float32 (the same as bed_track's)."""

    def __init__(self, run: Run, bed: np.ndarray, rate: int = RATE):
        spec = run.spec
        self.spec, self.rate, self.bed = spec, rate, bed
        self.n = max(0, int(round((run.end - run.start) * rate)))
        self.first = int(round(spec.start * rate))
        self.length = bed.shape[1] - self.first
        if self.length <= 0:
            raise AvatarError(f"music.start {spec.start:g} s is past the end of the bed "
                              f"({bed.shape[1] / rate:.1f} s)", field="music.start")
        self.stop = None if spec.loop else min(self.n, self.length)
        local = [(s - run.start, e - run.start) for s, e in run.words if e > run.start and s < run.end]
        self.duck = duck_amount(local, spec.attack, spec.release, self.n / rate)   # CONTROL Hz: small

    def block(self, a: int, b: int) -> np.ndarray:
        i = np.arange(max(0, a), min(b, self.n))
        if self.spec.loop:
            out = self.bed[:, self.first + i % self.length]
        else:
            out = np.zeros((2, i.size), np.float32)
            inside = i < self.length
            out[:, inside] = self.bed[:, self.first + i[inside]]
        db = self.spec.volume + self.spec.duck * np.interp(i / self.rate, np.arange(self.duck.size) / CONTROL,
                                                           self.duck)
        gain = (10 ** (db / 20)).astype(np.float32) * _fade_at(i, self.n, self.rate, self.spec.fade, self.stop)
        return (out * gain).astype(np.float32, copy=False)


def bed_track(run: Run, bed: np.ndarray, rate: int = RATE) -> np.ndarray:
    """The run's whole bed track (see Bed): (2, n) float32."""
    b = Bed(run, bed, rate)
    return b.block(0, b.n)


def music_beds(runs: list[Run], cache_dir: Path | None, rate: int = RATE) -> list[tuple[int, Bed]]:
    """(first sample, Bed) of every run: the decoded beds, made once for any number of passes."""
    return [(int(round(r.start * rate)), Bed(r, load_bed(r.spec.file, cache_dir, rate), rate)) for r in runs]


def music_stream(blocks: Iterable[np.ndarray], runs: list[Run], cache_dir: Path | None, rate: int = RATE,
                 beds: list[tuple[int, Bed]] | None = None) -> Iterator[np.ndarray]:
    """The narration's blocks, (c, n) each, with every run's bed added: (2, n) blocks (no runs:
    the blocks unchanged). Beds are made block by block; only the decoded beds are held.
    beds: music_beds(runs, ...) made beforehand (a stream read twice decodes them once)."""
    if not runs:
        yield from blocks
        return
    beds = music_beds(runs, cache_dir, rate) if beds is None else beds
    t = 0
    for x in blocks:
        n = x.shape[1]
        out = np.repeat(x[:1], 2, axis=0) if x.shape[0] == 1 else np.array(x[:2], np.float32)
        for a, bed in beds:
            lo, hi = max(t, a), min(t + n, a + bed.n)
            if lo < hi:
                out[:, lo - t:hi - t] += bed.block(lo - a, hi - a)
        yield out
        t += n


def mix_music(narration: np.ndarray, runs: list[Run], cache_dir: Path | None, rate: int = RATE) -> np.ndarray:
    """narration (c, n) + every run's bed -> (2, n) float32 (no runs: narration unchanged)."""
    if not runs:
        return narration
    return next(music_stream([narration], runs, cache_dir, rate))
