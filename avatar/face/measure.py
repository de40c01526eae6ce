"""Measure the Motion mouth parameters on 478-point MediaPipe face meshes.

These are the same units the motion stage produces (see avatar.types.MOUTH_PARAMS),
so rendered frames and real video can be scored against predictions directly.
"""
from __future__ import annotations

import numpy as np

from avatar.types import EYE_CORNERS, eye_distance

# MediaPipe face-mesh indices (the outer eye corners: avatar.types.EYE_CORNERS)
INNER_LIP = (13, 14)          # upper / lower inner lip, centre
MOUTH_CORNERS = (61, 291)


def mouth_open(lm: np.ndarray) -> np.ndarray:
    """Inner-lip gap / outer-eye-corner distance. lm: (..., 478, >=2) in any consistent units."""
    lm = np.asarray(lm, np.float32)
    gap = np.linalg.norm(lm[..., INNER_LIP[0], :2] - lm[..., INNER_LIP[1], :2], axis=-1)
    return gap / np.maximum(eye_distance(lm), 1e-6)


def mouth_width(lm: np.ndarray) -> np.ndarray:
    """Mouth-corner distance / outer-eye-corner distance (subtract the rest value to get `width`)."""
    lm = np.asarray(lm, np.float32)
    w = np.linalg.norm(lm[..., MOUTH_CORNERS[0], :2] - lm[..., MOUTH_CORNERS[1], :2], axis=-1)
    return w / np.maximum(eye_distance(lm), 1e-6)


def mesh_frames(frames, *, static: bool = False):
    """478-point MediaPipe face meshes of RGB uint8 frames, lazily: yields (478, 3) float32
    arrays in pixels (z in MediaPipe's x-scale) or None where no face is found.
    static=False tracks across frames (video); True detects each frame afresh."""
    import mediapipe as mp

    from avatar.face.quiet import native_quiet

    # quiet for the whole run: the graph threads log after the first frame, asynchronously
    with native_quiet(), mp.solutions.face_mesh.FaceMesh(
            static_image_mode=static, max_num_faces=1, refine_landmarks=True,
            min_detection_confidence=0.5, min_tracking_confidence=0.5) as fm:
        for frame in frames:
            frame = np.ascontiguousarray(frame)
            h, w = frame.shape[:2]
            res = fm.process(frame)
            if not res.multi_face_landmarks:
                yield None
                continue
            pts = res.multi_face_landmarks[0].landmark
            yield np.array([(p.x * w, p.y * h, p.z * w) for p in pts], np.float32)


def mouth_track_from_meshes(meshes) -> np.ndarray:
    """(T, 2) [open, width] from a sequence of meshes (None = no face: interpolated from
    neighbours); width relative to the clip's median mouth width."""
    meshes = list(meshes)
    n = len(meshes)
    out = np.full((n, 2), np.nan, np.float32)
    ok = np.array([m is not None for m in meshes], bool)
    if not ok.any():
        return out
    lm = np.stack([m for m in meshes if m is not None])
    out[ok, 0] = mouth_open(lm)
    w = mouth_width(lm)
    out[ok, 1] = w - np.median(w)
    idx = np.arange(n)
    for c in range(2):
        out[~ok, c] = np.interp(idx[~ok], idx[ok], out[ok, c])
    return out


# ----------------------------------------------------------------------------- real footage
MAX_YAW = 45.0         # degrees of head turn beyond which a frame is dropped
MIN_EYE_RATIO = 0.7    # eye distance below this share of the clip's median (turned, far, lost): dropped


def head_yaw(lm: np.ndarray) -> np.ndarray:
    """Head turn in degrees of (..., 478, 3) meshes: the angle of the outer-eye-corner line
    out of the image plane (MediaPipe's z). 0 = frontal."""
    d = np.asarray(lm, np.float32)[..., EYE_CORNERS[1], :3] - np.asarray(lm, np.float32)[..., EYE_CORNERS[0], :3]
    return np.degrees(np.arctan2(d[..., 2], d[..., 0]))


def mouth_raw(meshes) -> tuple[np.ndarray, np.ndarray]:
    """(T, 2) raw [open, width] in eye-distance units and a (T,) mask of usable frames, for a
    sequence of meshes (None = face lost). Distances are 3-D (MediaPipe's z), so a turned
    head does not shrink the eye distance; width here is the whole mouth-corner distance
    (no rest subtracted). Unusable: face lost, |head_yaw| > MAX_YAW, or eye distance in
    pixels under MIN_EYE_RATIO of the clip median (a face turned away or mis-tracked)."""
    meshes = list(meshes)
    n = len(meshes)
    out = np.full((n, 2), np.nan, np.float32)
    ok = np.array([m is not None for m in meshes], bool)
    if not ok.any():
        return out, ok
    lm = np.stack([m for m in meshes if m is not None]).astype(np.float32)

    def dist(i, j):
        return np.linalg.norm(lm[:, i, :3] - lm[:, j, :3], axis=-1)

    eye3 = np.maximum(dist(*EYE_CORNERS), 1e-6)
    out[ok, 0] = dist(*INNER_LIP) / eye3
    out[ok, 1] = dist(*MOUTH_CORNERS) / eye3
    eye2 = eye_distance(lm)
    good = (np.abs(head_yaw(lm)) <= MAX_YAW) & (eye2 >= MIN_EYE_RATIO * np.median(eye2))
    ok[np.flatnonzero(ok)[~good]] = False
    out[~ok] = np.nan
    return out, ok
