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
