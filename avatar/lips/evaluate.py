"""Judge mouth motion against real video: Pearson r and best lag of mouth opening.

`evaluate_video(path)` predicts the mouth opening from the video's audio alone (the
audio model), measures the real opening with MediaPipe on its frames
(avatar.face.measure.mouth_open: inner-lip gap / outer-eye-corner distance) and
scores the prediction and baselines: the RMS loudness envelope (what a naive tool
does), the phoneme rig driven by pocketsphinx's own recognition of the audio (no
transcript needed) and, when the transcript is known, the phoneme rig on the transcript
force-aligned to the real audio (avatar.speech.align). With `rendered_with`
a photo, the model's motion is also rendered on that photo with the warp renderer and
the mouth is re-measured on the rendered frames, so renderer fidelity counts too.

Folders (`avatar lips eval DIR`): `evaluate_folder` scores every clip of a folder
(avatar.lips.real: measured once, speaker scale, A/V offsets) for opening and width;
`cross_validate` trains and refits per fold, k-fold by speaker, and scores held-out
speakers only; `format_table` prints per clip and the medians.

Lag convention: lag L pairs predicted frame t with real frame t + L, so a positive
best lag means the prediction runs L frames early.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from avatar.errors import AvatarError

MAX_LAG = 10


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    n = min(len(a), len(b))
    a, b = a[:n] - a[:n].mean(), b[:n] - b[:n].mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else 0.0


def lagged_r(pred: np.ndarray, real: np.ndarray, lag: int) -> float:
    """Pearson r between pred[t] and real[t + lag] over the frames both cover."""
    n = min(len(pred), len(real))
    pred, real = np.asarray(pred)[:n], np.asarray(real)[:n]
    if lag >= 0:
        return pearson(pred[: n - lag], real[lag:])
    return pearson(pred[-lag:], real[: n + lag])


def sync_scores(pred: np.ndarray, real: np.ndarray, max_lag: int = MAX_LAG) -> dict:
    """{'r': r at lag 0, 'best_lag': lag in [-max_lag, max_lag] with the highest r, 'best_r'}."""
    lags = range(-max_lag, max_lag + 1)
    rs = [lagged_r(pred, real, L) for L in lags]
    i = int(np.argmax(rs))
    return {"r": lagged_r(pred, real, 0), "best_lag": int(list(lags)[i]), "best_r": float(rs[i])}


def video_frames(path: str | Path) -> Iterator[np.ndarray]:
    """RGB uint8 frames of the first video stream (PyAV), lazily."""
    import av

    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def video_fps(path: str | Path) -> float:
    """The first video stream's frame rate; AvatarError naming `path` if it has none or is not a video."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise AvatarError("no video stream", path=path, hint="give a talking-head video")
            s = container.streams.video[0]
            return float(s.average_rate or s.guessed_rate or 25)
    except av.FFmpegError as e:
        raise AvatarError(f"not a readable video ({type(e).__name__})", path=path,
                          hint="give a talking-head video file, e.g. MP4 or MKV") from None


def measure_video(path: str | Path) -> tuple[np.ndarray, float]:
    """(T, 2) real [open, width] measured with MediaPipe on every frame, and the fps."""
    from avatar.face.measure import mesh_frames, mouth_track_from_meshes

    path = Path(path)
    if not path.is_file():
        raise AvatarError("video not found", path=path, hint="check the video path")
    fps = video_fps(path)
    meshes = list(mesh_frames(video_frames(path)))
    if not any(m is not None for m in meshes):
        raise AvatarError("no face found in any frame", path=path,
                          hint="use a video with one visible, frontal face")
    return mouth_track_from_meshes(meshes), fps


def rendered_open(photo: str | Path, mouth: np.ndarray, fps: float) -> np.ndarray:
    """Render `mouth` on `photo` with the warp renderer (no head motion, no blinks) and
    measure the mouth opening on the rendered frames with MediaPipe."""
    from avatar.face import load_identity
    from avatar.face.measure import mesh_frames, mouth_track_from_meshes
    from avatar.renderers.warp import WarpRenderer
    from avatar.types import Motion

    identity = load_identity(photo)
    n = len(mouth)
    motion = Motion(fps, mouth, np.zeros((n, 3)), np.zeros(n), np.zeros(n))
    frames = WarpRenderer().frames(identity, motion, crop=True)
    return mouth_track_from_meshes(mesh_frames(frames))[:, 0]


def evaluate_video(path: str | Path, *, transcript: str | None = None, rendered_with: str | Path | None = None,
                   model_path: str | Path | None = None, max_lag: int = MAX_LAG) -> dict:
    """Score mouth opening predicted from the video's audio against the real one.

    Returns {'frames', 'fps', 'model': {r, best_lag, best_r}, 'model_width': {...},
    'envelope': {...}, and with a transcript 'rig' and 'hybrid', with a photo
    'rendered' (rendered frames vs real) and 'renderer_fidelity' (r of rendered vs predicted)}.
    """
    from avatar.motion.audio_model import DEFAULT_WEIGHTS, hybrid_mouth, load_model
    from avatar.motion.features import rms_envelope
    from avatar.speech.recorded import load_audio

    real, fps = measure_video(path)
    audio, sr = load_audio(path)
    n = len(real)
    model = load_model(Path(model_path) if model_path else DEFAULT_WEIGHTS)
    pred = model.predict(audio, sr, n, fps)
    out: dict = {"video": str(path), "frames": n, "fps": fps,
                 "model": sync_scores(pred[:, 0], real[:, 0], max_lag),
                 "model_width": sync_scores(pred[:, 1], real[:, 1], max_lag),
                 "envelope": sync_scores(rms_envelope(audio, sr, n, fps), real[:, 0], max_lag)}
    from avatar.motion.rig import mouth_track
    from avatar.speech.align import align_transcript, recognize

    heard = recognize(audio, sr)
    out["recognized"] = sync_scores(mouth_track(heard.phonemes, n, fps)[:, 0], real[:, 0], max_lag)
    out["recognized_text"] = " ".join(w.text for w in heard.words)
    if transcript:
        speech = align_transcript(audio, sr, transcript)
        out["rig"] = sync_scores(mouth_track(speech.phonemes, n, fps)[:, 0], real[:, 0], max_lag)
        out["hybrid"] = sync_scores(hybrid_mouth(pred, speech.phonemes, n, fps, lead=model.lead)[:, 0], real[:, 0], max_lag)
    if rendered_with:
        opened = rendered_open(rendered_with, pred, fps)
        out["rendered"] = sync_scores(opened, real[:, 0], max_lag)
        out["renderer_fidelity"] = pearson(opened, pred[:, 0])
    return out


def format_report(res: dict) -> str:
    lines = [f"{res['video']}: {res['frames']} frames @ {res['fps']:g} fps (mouth opening, Pearson r)"]
    names = {"model": "audio model", "model_width": "audio model (width)", "envelope": "RMS envelope baseline",
             "recognized": "phoneme rig (pocketsphinx ASR)", "rig": "phoneme rig (transcript, aligned)", "hybrid": "hybrid (model + closures)",
             "rendered": "rendered frames (warp)"}
    for key, label in names.items():
        if key in res:
            s = res[key]
            lines.append(f"  {label:34s} r = {s['r']:+.3f} at lag 0; best lag {s['best_lag']:+d} "
                         f"(r = {s['best_r']:+.3f})")
    if res.get("recognized_text"):
        lines.append(f"  (pocketsphinx heard: {res['recognized_text']!r})")
    if "renderer_fidelity" in res:
        lines.append(f"  {'renderer fidelity':34s} r = {res['renderer_fidelity']:+.3f} (rendered vs predicted)")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- folders of clips
METHODS = {"new": "audio model (new)", "previous": "audio model (previous)", "envelope": "RMS envelope",
           "rig_design": "phoneme rig (design table)", "rig": "phoneme rig (shipped)",
           "rig_fit": "phoneme rig (refitted)"}


def clip_scores(clip, scale, preds: dict[str, np.ndarray]) -> dict:
    """{method: {'open': scores, 'width': scores}} of (T, 2) predictions at GRID_FPS against the
    clip's measured mouth in rig units (offset applied; avatar.lips.real.scores). The envelope
    has no width."""
    from avatar.lips import real as R

    y = R.targets(clip, scale)
    out = {}
    for name, p in preds.items():
        p = np.asarray(p, np.float64).reshape(len(p), -1)
        out[name] = {"open": R.scores(p[:, 0], y[:, 0])}
        if p.shape[1] > 1:
            out[name]["width"] = R.scores(p[:, 1], y[:, 1])
    return out


def baseline_preds(clip, previous=None, rig_fit=None) -> dict[str, np.ndarray]:
    """Predictions needing no training on the clips: previous checkpoint, envelope, the rig's design
    table (pocketsphinx phones) and, given a RigFit, that fit; else the shipped rig."""
    from avatar.lips import real as R
    from avatar.motion.features import rms_envelope
    from avatar.motion.rig import mouth_track

    n = clip.frames
    out = {}
    if previous is not None:
        out["previous"] = previous.predict(clip.audio, clip.sample_rate, n, R.GRID_FPS)
    out["envelope"] = rms_envelope(clip.audio, clip.sample_rate, n, R.GRID_FPS)[:, None]
    out["rig_design"] = mouth_track(clip.phonemes, n, R.GRID_FPS, calibrated=False)
    if rig_fit is not None:
        out["rig_fit"] = rig_fit.mouth(clip.phonemes, n, R.GRID_FPS)
    else:
        out["rig"] = mouth_track(clip.phonemes, n, R.GRID_FPS)
    return out


def speaker_folds(clips, k: int) -> dict[str, int]:
    """speaker -> fold in [0, k): speakers by total frames, largest first, each to the fold with
    the fewest frames so far (ties: lowest fold); deterministic."""
    by: dict[str, int] = {}
    for c in clips:
        by[c.speaker] = by.get(c.speaker, 0) + c.frames
    load = [0] * k
    out = {}
    for spk in sorted(by, key=lambda s: (-by[s], s)):
        f = int(np.argmin(load))
        out[spk] = f
        load[f] += by[spk]
    return out


def medians(rows: list[dict], methods) -> dict:
    """{method: {channel: {'r', 'best_r', 'abs_lag'}}} medians over rows whose clip is not unclear."""
    use = [r for r in rows if r["status"] != "unclear"]
    out: dict = {}
    for m in methods:
        for ch in ("open", "width"):
            vals = [r["scores"][m][ch] for r in use if m in r["scores"] and ch in r["scores"][m]]
            if vals:
                out.setdefault(m, {})[ch] = {
                    "r": float(np.median([v["r"] for v in vals])),
                    "best_r": float(np.median([v["best_r"] for v in vals])),
                    "abs_lag": float(np.median([abs(v["best_lag"]) for v in vals])), "clips": len(vals)}
    return out


def format_table(rows: list[dict], methods=None, title: str = "") -> str:
    """Per clip and median: r at lag 0 / r at the best lag / best lag, opening and width, per method."""
    methods = [m for m in (methods or METHODS) if any(m in r["scores"] for r in rows)]
    lines = [title] if title else []
    lines.append("lag L pairs predicted frame t with real frame t + L (40 ms frames); "
                 "clips marked unclear are left out of the medians")
    for m in methods:
        lines.append(f"\n{METHODS.get(m, m)}")
        lines.append(f"  {'clip':46s} {'offset':>9s}   {'open r0':>7s} {'best':>6s} {'lag':>4s}   "
                     f"{'width r0':>8s} {'best':>6s} {'lag':>4s}")
        for r in rows:
            if m not in r["scores"]:
                continue
            s = r["scores"][m]
            cells = []
            for ch in ("open", "width"):
                if ch in s:
                    cells.append(f"{s[ch]['r']:+.3f} {s[ch]['best_r']:+.3f} {s[ch]['best_lag']:+4d}")
                else:
                    cells.append(f"{'-':>6s} {'-':>6s} {'-':>4s}")
            off = "unclear" if r["status"] == "unclear" else f"{r['offset']:+d}"
            lines.append(f"  {r['clip'][:46]:46s} {off:>9s}    {cells[0]}     {cells[1]}")
    med = medians(rows, methods)
    lines.append("\nmedian over clips (|best lag| median)")
    lines.append(f"  {'method':28s} {'open r0':>8s} {'best':>6s} {'|lag|':>5s}   {'width r0':>8s} {'best':>6s} {'|lag|':>5s}  clips")
    for m in methods:
        cells = []
        for ch in ("open", "width"):
            v = med.get(m, {}).get(ch)
            cells.append(f"{v['r']:+.3f}  {v['best_r']:+.3f} {v['abs_lag']:5.1f}" if v else f"{'-':>6s}  {'-':>6s} {'-':>5s}")
        n = med.get(m, {}).get("open", {}).get("clips", 0)
        lines.append(f"  {METHODS.get(m, m):28s} {cells[0]}     {cells[1]}  {n}")
    return "\n".join(lines)


def evaluate_folder(folder: Path, model_path=None, previous_path=None, reference_path=None,
                    log=print) -> list[dict]:
    """Score every clip of `folder` (no training): the model, an optional previous checkpoint,
    the envelope and the shipped rig. A/V offsets from `reference_path` (default: the model)."""
    from avatar.lips import real as R
    from avatar.lips.train import prepare_clips
    from avatar.motion.audio_model import DEFAULT_WEIGHTS, load_model

    model = load_model(Path(model_path) if model_path else DEFAULT_WEIGHTS)
    previous = load_model(Path(previous_path)) if previous_path else None
    ref = load_model(Path(reference_path)) if reference_path else model
    clips, offsets = prepare_clips(folder, ref, log)
    scales = R.speaker_scales(clips)
    rows = []
    for c, off in zip(clips, offsets):
        preds = {"new": model.predict(c.audio, c.sample_rate, c.frames, R.GRID_FPS), **baseline_preds(c, previous)}
        rows.append({"clip": c.name, "speaker": c.speaker, "offset": off["offset"], "status": c.status,
                     "peak_r": off["peak_r"], "scores": clip_scores(c, scales[c.speaker], preds)})
    return rows


def cross_validate(folder: Path, opts, folds: int = 5, fractions=(1.0,), previous_path=None,
                   work: Path | None = None, log=print) -> dict:
    """k-fold by speaker: for each fold, train (opts: avatar.lips.train.TrainOptions, real phase
    on the other folds' clips) and refit the rig on the other folds, then score the held-out
    clips. fractions < 1 also train on that share of each fold's training clips (seeded) for
    the data curve. Offsets and speaker scales come from all clips (no labels of the held-out
    speaker enter its model: the scale is per speaker and r ignores it)."""
    from dataclasses import replace

    from avatar.lips import real as R
    from avatar.lips import rigfit
    from avatar.lips.dataset import cache_dir
    from avatar.lips.train import _corpus, _pretrained, prepare_clips, train
    from avatar.motion.audio_model import AudioMotionModel, load_model

    work = Path(work or cache_dir() / "cv")
    corpus, _ = _corpus(opts, log)
    net, cfg = _pretrained(opts, corpus, log)
    clips, offsets = prepare_clips(folder, AudioMotionModel(net, cfg), log)
    off = {o["clip"]: o for o in offsets}
    scales = R.speaker_scales(clips)
    fold_of = speaker_folds(clips, folds)
    previous = load_model(Path(previous_path)) if previous_path else None
    rows: list[dict] = []
    curve: dict[float, list[dict]] = {f: [] for f in fractions if f < 1.0}
    fits = []
    for k in range(folds):
        test = [c for c in clips if fold_of[c.speaker] == k]
        trainc = [c for c in clips if fold_of[c.speaker] != k]
        if not test:
            continue
        log(f"fold {k + 1}/{folds}: held out {len({c.speaker for c in test})} speakers, {len(test)} clips")
        fit = rigfit.fit([c for c in trainc if c.status != "unclear"], scales)
        fits.append(fit)
        log(f"fold {k + 1}: rig refitted: lead {fit.lead:.2f} s, time constants x{fit.tau_scale:g}")
        models = {}
        for frac in sorted(set(fractions), reverse=True):
            sub = trainc
            if frac < 1.0:
                rng = np.random.default_rng([opts.seed, k, int(frac * 1000)])
                n = max(1, int(round(frac * len(trainc))))
                sub = [trainc[i] for i in sorted(rng.choice(len(trainc), n, replace=False))]
            out = work / f"fold{k}-{int(frac * 100)}.safetensors"
            train(replace(opts, clips=sub, out=out, progress=False), log=log, corpus=corpus)
            models[frac] = load_model(out)
        for c in test:
            o = off[c.name]
            base = {"clip": c.name, "speaker": c.speaker, "fold": k, "offset": o["offset"],
                    "status": c.status, "peak_r": o["peak_r"]}
            for frac, model in models.items():
                pred = model.predict(c.audio, c.sample_rate, c.frames, R.GRID_FPS)
                if frac < 1.0:
                    curve[frac].append({**base, "scores": clip_scores(c, scales[c.speaker], {"new": pred})})
                    continue
                preds = {"new": pred, **baseline_preds(c, previous, fit)}
                rows.append({**base, "scores": clip_scores(c, scales[c.speaker], preds)})
        done = rows if 1.0 in models else curve[min(models)]
        med = medians([r for r in done if r["fold"] == k], ["new", "previous", "rig_design", "rig_fit"])
        log(f"fold {k + 1}: held-out median r at lag 0 (opening): "
            + ", ".join(f"{m} {v['open']['r']:+.3f}" for m, v in med.items()))
    rows.sort(key=lambda r: r["clip"])
    full = rigfit.fit([c for c in clips if c.status != "unclear"], scales)
    return {"rows": rows, "curve": {f: medians(v, ["new"]) for f, v in curve.items()},
            "curve_rows": {f: v for f, v in curve.items()}, "offsets": offsets,
            "folds": fold_of, "rig_fit_all": full, "rig_fits": fits}
