"""Measure the Motion mouth parameters on 478-point MediaPipe face meshes.

These are the same units the motion stage produces (see avatar.types.MOUTH_PARAMS),
so rendered frames and real video can be scored against predictions directly.
"""
from __future__ import annotations

import numpy as np

# MediaPipe face-mesh indices
EYE_OUTER = (33, 263)
INNER_LIP = (13, 14)          # upper / lower inner lip, centre
MOUTH_CORNERS = (61, 291)


def eye_distance(lm: np.ndarray) -> np.ndarray:
    lm = np.asarray(lm, np.float32)
    return np.linalg.norm(lm[..., EYE_OUTER[0], :2] - lm[..., EYE_OUTER[1], :2], axis=-1)


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


def mouth_params(lm: np.ndarray, rest_width: float | None = None) -> np.ndarray:
    """(..., 2) [open, width]; width relative to `rest_width` (default: this mesh's own width)."""
    w = mouth_width(lm)
    base = w if rest_width is None else rest_width
    return np.stack([mouth_open(lm), w - base], axis=-1)
