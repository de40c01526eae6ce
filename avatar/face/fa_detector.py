"""Face detector backed by the `face_alignment` package (optional extra `face-alignment`).

face_alignment (Bulat & Tzimiropoulos' FAN, S3FD face detector) finds 68 landmarks per
face and copes with some faces MediaPipe misses. The renderers need the 478-point
MediaPipe topology, so the 68 points are mapped onto it:

  1. a template 478-point mesh (MediaPipe's own mesh of the bundled public-domain
     astronaut photo, made once per process) is fitted to the 68 points with a 3D->2D
     affine camera (least squares over the 68 corresponding template points): position,
     scale, rotation including yaw and pitch;
  2. what that global fit leaves at the 68 points (this face's own eye, brow, lip and jaw
     shape, an open mouth) is spread over all 478 points with a thin-plate-spline
     interpolation of the residuals (scipy RBFInterpolator), faded out with the distance
     from the nearest of the 68 points (the forehead keeps the global fit);
  3. depth (z) is the template's, turned by the fitted rotation and scaled, in pixels
     like MediaPipe's.

face_alignment downloads its weights from the web on first use; we never let it: the
files must already be in torch's hub cache (see `required_weights`), else an AvatarError
says which files to fetch and where to put them.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from avatar.errors import AvatarError

INSTALL_HINT = ("pip install 'avatar-presenter[face-alignment]' (or, to keep opencv-contrib-python: "
                "pip install --no-deps face-alignment==1.5.0 numba); see docs/gpu.md")

# dlib/iBUG 68-point order -> MediaPipe face-mesh index of the same place.
# (Subject's right = image left, as in both schemes.)
MP_OF_68 = np.array([
    # jaw 0-16, subject's right ear to left ear through the chin
    127, 234, 93, 132, 58, 136, 150, 176, 152, 400, 379, 365, 288, 361, 323, 454, 356,
    # right brow 17-21, left brow 22-26
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    # nose bridge 27-30, nostrils 31-35
    168, 197, 5, 4, 75, 97, 2, 326, 305,
    # right eye 36-41, left eye 42-47 (outer corner first, clockwise)
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    # outer lips 48-59, inner lips 60-67
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
    78, 82, 13, 312, 308, 317, 14, 87,
])

FADE = 0.25   # template units (eye distances): how far from the 68 points their local correction reaches

# face_alignment's weights (2D landmarks + S3FD face detector): file name -> URL
WEIGHTS = {
    "s3fd-619a316812.pth": "https://www.adrianbulat.com/downloads/python-fan/s3fd-619a316812.pth",
    "2DFAN4-11f355bf06.pth.tar": "https://www.adrianbulat.com/downloads/python-fan/2DFAN4-11f355bf06.pth.tar",
}


def weights_dir() -> Path:
    """Where face_alignment (through torch.hub) looks for its weights."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def required_weights() -> list[tuple[str, Path, bool]]:
    """(url, path, present) for every weight file detect_478 needs."""
    d = weights_dir()
    return [(url, d / name, (d / name).is_file()) for name, url in WEIGHTS.items()]


@lru_cache(maxsize=1)
def _aligner(device: str):
    try:
        import face_alignment
    except ImportError as e:
        raise AvatarError(f"the face-alignment detector needs the face_alignment package ({e.name} is missing)",
                          field="detector", hint=INSTALL_HINT) from e
    missing = [(url, path) for url, path, ok in required_weights() if not ok]
    if missing:
        files = ", ".join(f"{url} -> {path}" for url, path in missing)
        raise AvatarError(f"face-alignment weights are not downloaded: {files}", field="detector",
                          hint="download those files to that folder once (e.g. with curl -L -o), "
                               "or use detector: mediapipe")
    try:
        return face_alignment.FaceAlignment(face_alignment.LandmarksType.TWO_D, device=device,
                                            face_detector="sfd", flip_input=False, compile=False)
    except Exception as e:   # corrupt or mismatched weight files
        raise AvatarError(f"face-alignment could not load its weights from {weights_dir()}: {type(e).__name__}: {e}",
                          field="detector", hint="delete the files and download them again") from e


def _torch():
    """torch (face_alignment runs on it), or a one-line AvatarError: the core install has no torch."""
    try:
        import torch
    except ImportError as e:
        raise AvatarError(f"the face-alignment detector needs torch ({e.name} is missing)",
                          field="detector", hint=INSTALL_HINT) from None
    return torch


def detect_68(image: np.ndarray) -> list[np.ndarray]:
    """(68, 2) float32 landmarks in pixels per face found in RGB uint8 `image`, largest face first."""
    torch = _torch()
    fa = _aligner("cuda" if torch.cuda.is_available() else "cpu")
    with torch.no_grad():
        found = fa.get_landmarks_from_image(np.ascontiguousarray(image[..., :3]))
    faces = [np.asarray(f, np.float32)[:, :2] for f in (found or [])]
    return sorted(faces, key=lambda f: -float(np.prod(f.max(0) - f.min(0))))


def detect_478(image: np.ndarray) -> list[np.ndarray]:
    """All faces in RGB uint8 `image` as (478, 3) float32 MediaPipe-topology meshes in
    pixels (x, y, z), largest first. AvatarError if face_alignment or its weights are missing."""
    return [mesh_from_68(f) for f in detect_68(image)]


# ---------------------------------------------------------------------- 68 -> 478
@lru_cache(maxsize=1)
def template_mesh() -> np.ndarray:
    """(478, 3) float64 template: MediaPipe's mesh of the bundled astronaut photo, centred,
    eye line level, unit outer-eye-corner distance."""
    from avatar.face import detect_faces, read_photo
    from avatar.resources import default_photo

    faces = detect_faces(read_photo(default_photo()))
    if not faces:   # cannot happen with the bundled photo and a working mediapipe
        raise AvatarError("MediaPipe found no face in the bundled template photo", hint="reinstall mediapipe")
    lm = faces[0].astype(np.float64)
    lm -= lm.mean(0)
    d = lm[263] - lm[33]
    a = -np.arctan2(d[1], d[0])
    c, s = np.cos(a), np.sin(a)
    lm[:, :2] = lm[:, :2] @ np.array([[c, s], [-s, c]])
    return lm / np.hypot(d[0], d[1])


def mesh_from_68(points68: np.ndarray, template: np.ndarray | None = None) -> np.ndarray:
    """(68, >=2) dlib-order landmarks in pixels -> (478, 3) float32 MediaPipe-topology mesh."""
    from scipy.interpolate import RBFInterpolator
    from scipy.spatial import cKDTree

    p = np.asarray(points68, np.float64)[:, :2]
    if p.shape != (68, 2):
        raise ValueError(f"expected (68, 2+) landmarks, got {np.shape(points68)}")
    t = template_mesh() if template is None else np.asarray(template, np.float64)
    anchors = t[MP_OF_68]
    # 1. affine camera: [x y] = [X Y Z 1] @ M, least squares over the 68 anchors
    X = np.c_[anchors, np.ones(len(anchors))]
    M, *_ = np.linalg.lstsq(X, p, rcond=None)              # (4, 2)
    proj = np.c_[t, np.ones(len(t))] @ M                   # (478, 2)
    # 2. thin-plate spline through the residuals at the anchors
    u, sv, vt = np.linalg.svd(M[:3].T, full_matrices=False)   # (2, 3) linear part of the camera
    scale = max(float(sv.mean()), 1e-9)                     # pixels per template unit
    resid = (p - proj[MP_OF_68]) / scale
    tps = RBFInterpolator(t[MP_OF_68, :2], resid, kernel="thin_plate_spline", smoothing=1e-4)
    # far from every anchor (the forehead: the 68 points stop at the brows) the spline only
    # extrapolates, so its correction fades out there and the global fit stands
    d, _ = cKDTree(t[MP_OF_68, :2]).query(t[:, :2])
    xy = proj + tps(t[:, :2]) * np.exp(-(d / FADE) ** 2)[:, None] * scale
    # 3. depth: the template turned by the fitted rotation (nearest orthonormal rows), in pixels
    r = u @ vt
    z = scale * ((t - t.mean(0)) @ np.cross(r[0], r[1]))
    return np.c_[xy, z].astype(np.float32)
