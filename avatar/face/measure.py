"""Measure the Motion mouth parameters on 478-point MediaPipe face meshes.

These are the same units the motion stage produces (see avatar.types.MOUTH_PARAMS),
so rendered frames and real video can be scored against predictions directly.
"""
from __future__ import annotations

import numpy as np

from avatar.types import eye_distance

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
