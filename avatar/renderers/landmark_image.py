"""The conditioning image of the MediaPipe-face ControlNet, drawn from our 478 landmarks.

CrucibleAI/ControlNetMediaPipeFace was trained on annotations drawn by its
``laion_face_common`` annotator: on a black canvas, the face oval, eyes, eyebrows and
lips of the MediaPipe face mesh (``FACEMESH_*`` connection lists) as 2-pixel lines in
fixed colours, plus a small square on each pupil (landmarks 468 and 473). The
annotator draws into a BGR array and then flips it to RGB, so its BGR colour tuples
appear reversed in the RGB image; the table below gives them in RGB.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

# (connection list name in mediapipe.solutions.face_mesh_connections, RGB colour), in drawing order
_PARTS = (
    ("FACEMESH_FACE_OVAL", (10, 200, 10)),
    ("FACEMESH_LEFT_EYE", (10, 200, 180)),
    ("FACEMESH_LEFT_EYEBROW", (10, 220, 180)),
    ("FACEMESH_RIGHT_EYE", (180, 200, 10)),
    ("FACEMESH_RIGHT_EYEBROW", (180, 220, 10)),
    ("FACEMESH_LIPS", (10, 180, 10)),
)
# pupil centre landmark -> RGB colour (the annotator's right/left iris colours)
PUPILS = {468: (250, 200, 10), 473: (10, 200, 250)}
LINE_THICKNESS = 2
PUPIL_HALF_WIDTH = 2


@lru_cache(maxsize=1)
def _edges() -> tuple[tuple[np.ndarray, tuple[int, int, int]], ...]:
    """((E, 2) landmark index pairs, colour) per face part, from MediaPipe's own lists."""
    from mediapipe.python.solutions import face_mesh_connections as fmc

    return tuple((np.array(sorted(getattr(fmc, name)), np.int64), colour) for name, colour in _PARTS)


def face_condition_image(landmarks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Draw one face's conditioning image.

    landmarks: (478, >=2) x, y in pixels of the target image; size: (height, width).
    Returns (height, width, 3) uint8 RGB: coloured face contours on black.
    """
    import cv2

    lm = np.asarray(landmarks, np.float64)
    if lm.ndim != 2 or lm.shape[0] < 478 or lm.shape[1] < 2:
        raise ValueError(f"expected (478, 2+) landmarks, got {lm.shape}")
    h, w = size
    canvas = np.zeros((h, w, 3), np.uint8)
    pts = np.floor(lm[:, :2]).astype(np.int64)
    for edges, colour in _edges():
        for a, b in edges:
            cv2.line(canvas, (int(pts[a, 0]), int(pts[a, 1])), (int(pts[b, 0]), int(pts[b, 1])),
                     colour, LINE_THICKNESS)
    r = PUPIL_HALF_WIDTH
    for idx, colour in PUPILS.items():
        x, y = pts[idx]
        if 0 <= x < w and 0 <= y < h:
            canvas[max(y - r, 0):y + r, max(x - r, 0):x + r] = colour
    return canvas
