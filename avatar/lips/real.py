"""Real talking-head footage as lip-sync targets: measurement, speaker scale, audio/video offset.

A folder of clips (MP4/MKV/MOV/WEBM with their own speech) -> `Clip`s:
- every frame measured once with MediaPipe (avatar.face.measure.mouth_raw: 3-D inner-lip
  gap and mouth-corner distance in eye-distance units; lost or turned faces masked out),
  cached by the file's content digest in the user cache (avatar.lips.dataset.cache_dir);
- resampled by the frames' own timestamps onto a uniform GRID_FPS grid (variable frame
  rate clips come out regular; lags everywhere are in 40 ms frames), with times taken
  relative to the first audio sample (a stream start offset is not an A/V offset);
- pocketsphinx's recognition of the clip's audio, force-aligned (phone times for the rig),
  cached beside the measurement.

Speakers: `speaker=NAME` in the notes column of a manifest.tsv in the folder (the
shared training folder has one), else the file stem. Each speaker gets its own scale
(`SpeakerScale`: rest and typical maximum opening, rest width and width spread, pooled
over that speaker's usable frames) so targets from different faces are comparable:
`targets()` maps them onto the rig's units (REF_OPEN, REF_WIDTH).

A/V offset (`estimate_offset`, `assign_offsets`): the r(lag) curve, lag in [-MAX_LAG,
MAX_LAG], of a prediction from the audio alone against the measured opening peaks at
the lag where this clip's mouth best follows its sound. A predictor's own systematic
lead is the same on every clip, so a clip's offset is its peak minus the median peak
over the folder. One predictor can peak at a wrong lag on a short clip, so two
independent ones are used (an audio model on the spectrum, and the phoneme rig on
pocketsphinx's recognised phone times): the offset counts only when both curves have a
clear peak (r >= MIN_PEAK_R, no rival local peak more than 2 frames away within
PEAK_MARGIN) and both offsets agree within AGREE frames; else the clip is unclear and
left out (of training, and of the medians of `avatar lips eval`).
"""
from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avatar.errors import AvatarError
from avatar.types import Phoneme

GRID_FPS = 25.0
VIDEO_EXT = {".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v"}
MEASURE_VERSION = 1
MAX_LAG = 10
MIN_PEAK_R = 0.2
PEAK_MARGIN = 0.03
SYNC_TOLERANCE = 1          # |offset| <= this many frames: in sync, used as it is
AGREE = 2                   # the references' offsets must agree within this many frames
# a speaker's typical maximum opening above rest and width spread (p95 - p5), in eye distances:
# the medians over the 22 speakers of the shared training footage (3-D measure)
REF_OPEN = 0.17
REF_WIDTH = 0.12
MIN_USABLE = 0.5            # clips with fewer usable frames than this share are skipped


@dataclass
class Clip:
    name: str
    speaker: str
    raw: np.ndarray            # (T, 2) raw [open, width] at GRID_FPS, NaN where unusable
    ok: np.ndarray             # (T,) usable frames
    audio: np.ndarray          # mono float32
    sample_rate: int
    phonemes: list[Phoneme] = field(default_factory=list)   # pocketsphinx recognition, aligned
    heard: str = ""
    offset: int = 0            # frames the video runs behind the audio (set by the offset estimate)
    status: str = "unchecked"  # in sync | corrected | unclear

    @property
    def frames(self) -> int:
        return len(self.raw)


# ----------------------------------------------------------------------------- measuring
def _digest(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _decode_and_measure(path: Path) -> dict:
    """Frame times (s, relative to the first audio sample) and raw mouth of every frame."""
    import av

    from avatar.face.measure import mesh_frames, mouth_raw

    times: list[float] = []

    def frames():
        with av.open(str(path)) as c:
            a0 = 0.0
            if c.streams.audio and c.streams.audio[0].start_time is not None:
                s = c.streams.audio[0]
                a0 = float(s.start_time * s.time_base)
            for frame in c.decode(video=0):
                times.append(float(frame.time) - a0)
                yield frame.to_ndarray(format="rgb24")

    try:
        raw, ok = mouth_raw(mesh_frames(frames()))
    except av.FFmpegError as e:
        raise AvatarError(f"not a readable video ({type(e).__name__})", path=path,
                          hint="give talking-head video files, e.g. MP4 or MKV") from None
    return {"times": np.array(times, np.float64), "raw": raw, "ok": ok}


def _to_grid(times: np.ndarray, raw: np.ndarray, ok: np.ndarray, duration: float):
    """Values at t = i / GRID_FPS: interpolated between usable frames; a grid frame is usable
    when the source frame nearest to it is."""
    n = max(1, int(np.floor(min(duration, times[-1] + 1e-3) * GRID_FPS)) + 1)
    t = np.arange(n) / GRID_FPS
    nearest = np.clip(np.searchsorted(times, t), 1, len(times) - 1)
    nearest = np.where(np.abs(times[nearest - 1] - t) <= np.abs(times[nearest] - t), nearest - 1, nearest)
    good = ok[nearest] & (t >= times[0] - 0.5 / GRID_FPS)
    out = np.full((n, 2), np.nan, np.float32)
    if ok.sum() >= 2:
        for c in range(2):
            out[:, c] = np.interp(t, times[ok], raw[ok, c])
    out[~good] = np.nan
    return out, good


def load_clip(path: str | Path, speaker: str | None = None, cache: bool = True, log=None) -> Clip:
    """One clip, measured (cached by content digest) and recognised (cached too)."""
    from avatar.lips.dataset import cache_dir
    from avatar.speech.recorded import load_audio

    path = Path(path)
    if not path.is_file():
        raise AvatarError("video not found", path=path, hint="check the path")
    audio, sr = load_audio(path)
    store = cache_dir() / "real" / f"{path.stem[:60]}-{_digest(path)}-v{MEASURE_VERSION}.npz"
    if cache and store.is_file():
        z = np.load(store)
        raw, ok = z["raw"], z["ok"]
        ph = json.loads(str(z["phonemes"]))
        heard = str(z["heard"])
    else:
        if log:
            log(f"measuring {path.name} (MediaPipe, once: cached in {store.parent})")
        m = _decode_and_measure(path)
        if not len(m["times"]):
            raise AvatarError("no video frames", path=path, hint="give a talking-head video")
        raw, ok = _to_grid(m["times"], m["raw"], m["ok"], len(audio) / sr)
        from avatar.speech.align import recognize

        rec = recognize(audio, sr)
        ph = [(p.symbol, p.start, p.end) for p in rec.phonemes]
        heard = " ".join(w.text for w in rec.words)
        if cache:
            from avatar.files import atomic_path

            with atomic_path(store) as tmp:
                np.savez(tmp, raw=raw, ok=ok, phonemes=np.array(json.dumps(ph)), heard=np.array(heard))
    return Clip(path.name, speaker or path.stem, raw, ok, audio, sr, [Phoneme(*p) for p in ph], heard)


def speakers_from_manifest(folder: Path) -> dict[str, str]:
    """file name -> speaker, from `speaker=NAME` in the notes of folder/manifest.tsv (if any)."""
    mf = folder / "manifest.tsv"
    if not mf.is_file():
        return {}
    out = {}
    with open(mf, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            for part in (row.get("notes") or "").split(";"):
                part = part.strip()
                if part.startswith("speaker="):
                    out[row.get("file", "")] = part[len("speaker="):].strip()
    return out


def load_folder(folder: str | Path, cache: bool = True, log=print) -> list[Clip]:
    """Every video in `folder` (sorted by name) as a Clip; clips with too few usable frames are
    skipped with a notice. AvatarError when the folder is missing or has no usable video."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AvatarError("folder not found", path=folder, hint="give a folder of talking-head videos")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXT and p.is_file())
    if not files:
        raise AvatarError("no video files in this folder", path=folder,
                          hint="put talking-head clips (" + ", ".join(sorted(VIDEO_EXT)) + ") in it")
    who = speakers_from_manifest(folder)
    clips = []
    for p in files:
        c = load_clip(p, who.get(p.name), cache=cache, log=log)
        share = float(c.ok.mean()) if c.frames else 0.0
        if share < MIN_USABLE:
            log(f"skipping {p.name}: face usable in {share:.0%} of frames")
            continue
        clips.append(c)
    if not clips:
        raise AvatarError("no clip with a usable face", path=folder, hint="use frontal talking-head videos")
    return clips


# ----------------------------------------------------------------------------- speaker scale
@dataclass(frozen=True)
class SpeakerScale:
    open_rest: float
    open_max: float
    width_rest: float
    width_spread: float

    @classmethod
    def fit(cls, clips: list[Clip]) -> "SpeakerScale":
        """From the usable frames of one speaker's clips: rest opening = 5th percentile, typical
        maximum = 95th; rest width = median width where the mouth is nearly closed (opening in
        the lowest quarter of its range); width spread = 95th - 5th percentile."""
        raw = np.concatenate([c.raw[c.ok] for c in clips])
        o, w = raw[:, 0], raw[:, 1]
        lo, hi = np.percentile(o, [5, 95])
        closed = o <= lo + 0.25 * (hi - lo)
        w_rest = float(np.median(w[closed])) if closed.sum() >= 5 else float(np.median(w))
        w5, w95 = np.percentile(w, [5, 95])
        return cls(float(lo), float(max(hi, lo + 1e-3)), w_rest, float(max(w95 - w5, 1e-3)))

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """(T, 2) raw -> rig units: opening 0 at rest and REF_OPEN at the typical maximum (kept
        >= 0), width 0 at rest and REF_WIDTH per width spread."""
        o = (raw[:, 0] - self.open_rest) / (self.open_max - self.open_rest) * REF_OPEN
        w = (raw[:, 1] - self.width_rest) / self.width_spread * REF_WIDTH
        return np.stack([np.maximum(o, 0.0), w], axis=1).astype(np.float32)


def speaker_scales(clips: list[Clip]) -> dict[str, SpeakerScale]:
    by: dict[str, list[Clip]] = {}
    for c in clips:
        by.setdefault(c.speaker, []).append(c)
    return {s: SpeakerScale.fit(cs) for s, cs in by.items()}


def targets(clip: Clip, scale: SpeakerScale) -> np.ndarray:
    """(T, 2) rig-unit targets at GRID_FPS, shifted by the clip's offset (so the mouth lines up
    with the sound), NaN where unusable."""
    y = scale.apply(np.nan_to_num(clip.raw))
    y[~clip.ok] = np.nan
    return shift(y, clip.offset)


def shift(y: np.ndarray, lag: int) -> np.ndarray:
    """y moved `lag` frames earlier (out[t] = y[t + lag]), NaN where it runs out."""
    out = np.full_like(y, np.nan, dtype=np.float32)
    n = len(y)
    if lag >= 0:
        out[: n - lag] = y[lag:]
    else:
        out[-lag:] = y[: n + lag]
    return out


# ----------------------------------------------------------------------------- scores
def masked_r(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r over the frames where both are finite (0 when fewer than 10 or no variance)."""
    n = min(len(a), len(b))
    a, b = np.asarray(a[:n], np.float64), np.asarray(b[:n], np.float64)
    m = np.isfinite(a) & np.isfinite(b)
    if m.sum() < 10:
        return 0.0
    a, b = a[m] - a[m].mean(), b[m] - b[m].mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else 0.0


def r_curve(pred: np.ndarray, real: np.ndarray, max_lag: int = MAX_LAG) -> np.ndarray:
    """r(lag) for lag in [-max_lag, max_lag]; lag L pairs pred[t] with real[t + L]."""
    return np.array([masked_r(pred, shift(real, L)) for L in range(-max_lag, max_lag + 1)])


def scores(pred: np.ndarray, real: np.ndarray, max_lag: int = MAX_LAG) -> dict:
    """{'r': r at lag 0, 'best_r', 'best_lag'} over the usable (finite) frames of `real`."""
    rs = r_curve(pred, real, max_lag)
    i = int(np.argmax(rs))
    return {"r": float(rs[max_lag]), "best_r": float(rs[i]), "best_lag": i - max_lag}


def estimate_offset(pred_open: np.ndarray, real_open: np.ndarray, max_lag: int = MAX_LAG) -> dict:
    """{'peak_lag', 'peak_r', 'clear'} of the r(lag) curve (see the module docstring)."""
    rs = r_curve(pred_open, real_open, max_lag)
    i = int(np.argmax(rs))
    far = np.abs(np.arange(len(rs)) - i) > 2
    second = float(rs[far].max()) if far.any() else -1.0
    # a second peak only counts when it is a local maximum of the curve
    locmax = np.r_[False, (rs[1:-1] >= rs[:-2]) & (rs[1:-1] >= rs[2:]), False]
    rival = float(rs[far & locmax].max()) if (far & locmax).any() else -1.0
    clear = bool(rs[i] >= MIN_PEAK_R and rival < rs[i] - PEAK_MARGIN)
    return {"peak_lag": i - max_lag, "peak_r": float(rs[i]), "rival_r": rival, "second_r": second,
            "clear": clear}


def assign_offsets(clips: list[Clip], references: dict[str, dict[str, np.ndarray]], log=print) -> list[dict]:
    """Set each clip's offset and status from independent reference predictions
    ({reference: {clip name: (T,) opening at GRID_FPS}}, e.g. an audio model and the rig on
    recognised phones); returns one row per clip. Per reference, a clip's offset is its r(lag)
    peak minus the median peak over that reference's clear clips (the reference's own lead).
    Clear: every reference's peak is clear and they agree within AGREE frames; the offset is
    their mean, rounded. Anything else is unclear (left out of training and of the medians)."""
    rows = [{"clip": c.name} for c in clips]
    for ref, preds in references.items():
        ests = [estimate_offset(preds[c.name], c.raw[:, 0]) for c in clips]
        clear = [e["peak_lag"] for e in ests if e["clear"]]
        base = int(np.round(np.median(clear))) if clear else 0
        log(f"offsets by {ref}: its own lead {base:+d} frames (median peak over {len(clear)} clear clips)")
        for r, e in zip(rows, ests):
            r[ref] = {"offset": e["peak_lag"] - base, "peak_r": round(e["peak_r"], 3), "clear": e["clear"]}
    for c, r in zip(clips, rows):
        per = [r[ref] for ref in references]
        offs = [p["offset"] for p in per]
        ok = all(p["clear"] for p in per) and max(offs) - min(offs) <= AGREE
        r["offset"] = int(np.round(np.mean(offs))) if ok else 0
        r["peak_r"] = float(np.mean([p["peak_r"] for p in per]))
        if not ok:
            c.status, c.offset = "unclear", 0
        elif abs(r["offset"]) <= SYNC_TOLERANCE:
            c.status, c.offset = "in sync", 0
        else:
            c.status, c.offset = "corrected", r["offset"]
        r["status"] = c.status
    return rows


def offset_references(clips: list[Clip], model) -> dict[str, dict[str, np.ndarray]]:
    """The two independent references for assign_offsets: `model` (an AudioMotionModel) on each
    clip's audio, and the phoneme rig's design table (never fitted to real clips, so offsets do
    not depend on a fit that depends on them) on each clip's recognised phones."""
    from avatar.motion.rig import mouth_track

    return {"audio model": {c.name: model.predict(c.audio, c.sample_rate, c.frames, GRID_FPS)[:, 0] for c in clips},
            "rig": {c.name: mouth_track(c.phonemes, c.frames, GRID_FPS, calibrated=False)[:, 0] for c in clips}}
