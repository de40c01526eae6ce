"""Identity from one photo: 478-point MediaPipe face mesh, square face crop, masks.

    from avatar.face import load_identity
    ident = load_identity("me.jpg")          # avatar.types.Identity

Every problem with the photo is an AvatarError naming the photo. Results are cached
per photo content (hash of the file bytes) and options, in-process.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import warnings
from pathlib import Path

import numpy as np

from avatar.errors import AvatarError
from avatar.types import Identity, eye_distance

MIN_EYE_DISTANCE = 40.0   # px between the outer eye corners (the bundled astronaut has ~60)
MAX_YAW = 38.0            # degrees; beyond this the photo is a profile the warp cannot animate
DETECT_SIDE = 1024        # detect on a copy whose longest side is at most this
BOX_MARGIN = 1.9          # face box side / largest side of the landmark bounding box


def read_photo(path: str | Path, data: bytes | None = None) -> np.ndarray:
    """The photo as (H, W, 3) uint8 RGB, EXIF orientation applied, decoded at most
    avatar.limits.IMAGE_SIDE px on its longest side; AvatarError if unreadable or too large.
    data: the file's bytes when the caller has already read them (decoded instead of `path`)."""
    from PIL import Image

    from avatar.limits import open_image

    path = Path(path)
    if data is None and not path.is_file():
        raise AvatarError("photo not found", path=path, hint="check the avatar photo path")
    with open_image(path, data, hint="use a JPEG, PNG or WebP photo") as im:
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            im = im.convert("RGBA")
            bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(bg, im)
        return np.asarray(im.convert("RGB")).copy()


def estimate_yaw(lm: np.ndarray) -> float:
    """Head yaw in degrees from a (478, 3) mesh: angle of the eye-corner line out of the image plane."""
    d = lm[263] - lm[33]
    return float(np.degrees(np.arctan2(d[2], np.hypot(d[0], d[1]))))


def face_box(lm: np.ndarray, width: int, height: int, margin: float = BOX_MARGIN) -> tuple[int, int, int, int]:
    """Square box around the mesh with a margin, shifted (and shrunk if needed) to lie inside the image."""
    lo, hi = lm[:, :2].min(0), lm[:, :2].max(0)
    cx, cy = (lo + hi) / 2
    cy -= 0.05 * (hi[1] - lo[1])                       # a little more hair than neck
    side = int(round(min(max(hi - lo) * margin, width, height)))
    x0 = int(round(min(max(cx - side / 2, 0), width - side)))
    y0 = int(round(min(max(cy - side / 2, 0), height - side)))
    return x0, y0, x0 + side, y0 + side


def face_mask(lm: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Feathered (H, W) float32 mask of the face-mesh hull."""
    import cv2

    mask = np.zeros(shape, np.uint8)
    hull = cv2.convexHull(np.round(lm[:, :2]).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 255, cv2.LINE_AA)
    sigma = max(1.0, 0.08 * float(eye_distance(lm)))
    mask = cv2.GaussianBlur(mask, (0, 0), sigma)
    return mask.astype(np.float32) / 255.0


def person_mask(image: np.ndarray) -> np.ndarray:
    """(H, W) float32 0..1 person mask from MediaPipe selfie segmentation."""
    import cv2
    import mediapipe as mp

    from avatar.face.quiet import native_quiet

    small, scale = _downscale(image)
    with native_quiet(), mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as seg:
        m = seg.process(small).segmentation_mask
    if m is None:
        return np.ones(image.shape[:2], np.float32)
    m = np.clip(m.astype(np.float32), 0, 1)
    if scale != 1.0:
        m = cv2.resize(m, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    return m


def _downscale(image: np.ndarray) -> tuple[np.ndarray, float]:
    import cv2

    h, w = image.shape[:2]
    scale = min(1.0, DETECT_SIDE / max(h, w))
    if scale == 1.0:
        return image, 1.0
    small = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    return small, scale


def _mesh(image: np.ndarray) -> list[np.ndarray]:
    import mediapipe as mp

    from avatar.face.quiet import native_quiet

    small, scale = _downscale(image)
    h, w = small.shape[:2]
    with native_quiet(), mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True,
                                         max_num_faces=8, min_detection_confidence=0.5) as fm:
        res = fm.process(np.ascontiguousarray(small))
    return [np.array([[p.x * w, p.y * h, p.z * w] for p in f.landmark], np.float32) / scale
            for f in res.multi_face_landmarks or []]


def _small_face(image: np.ndarray) -> float | None:
    """Width in px of the largest face MediaPipe's full-range face detector finds (it sees faces
    far smaller than the mesh needs), None when there is none: tells "too small" from "no face"."""
    import mediapipe as mp

    from avatar.face.quiet import native_quiet

    small, scale = _downscale(image)
    with native_quiet(), mp.solutions.face_detection.FaceDetection(model_selection=1,
                                                                   min_detection_confidence=0.5) as fd:
        res = fd.process(np.ascontiguousarray(small))
    widths = [d.location_data.relative_bounding_box.width * small.shape[1] / scale for d in res.detections or []]
    return max(widths) if widths else None


def detect_faces(image: np.ndarray) -> list[np.ndarray]:
    """All faces as (478, 3) float32 meshes in pixels of `image`, largest first.

    MediaPipe's detector wants faces that fill a fair part of the picture; when the whole
    photo gives nothing (a small face in a wide shot), overlapping square tiles are tried.
    """
    faces = _mesh(image)
    if not faces:
        h, w = image.shape[:2]
        for side in (min(h, w), min(h, w) // 2):
            if side < 128:
                continue
            step = side // 2
            for y in range(0, max(h - side, 0) + 1, step):
                for x in range(0, max(w - side, 0) + 1, step):
                    for lm in _mesh(image[y:y + side, x:x + side]):
                        lm[:, :2] += (x, y)
                        eye = eye_distance(lm)
                        if all(np.hypot(*(lm[1, :2] - f[1, :2])) > 0.5 * eye for f in faces):
                            faces.append(lm)
            if faces:
                break
    return sorted(faces, key=lambda lm: -float(eye_distance(lm)))


def load_identity(path: str | Path, face_index: int = 0, detector: str = "mediapipe") -> Identity:
    """Prepare the presenter from one photo (JPEG/PNG/WebP). face_index 0 = the largest face."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError:
        raise AvatarError("photo not found or unreadable", path=path,
                          hint="check the avatar photo path") from None
    box = _cache_slot(hashlib.sha1(data).hexdigest(), face_index, detector)
    if not box:
        box.append(_build(path, data, face_index, detector))
    ident = box[0]
    return ident if ident.source == str(path) else dataclasses.replace(ident, source=str(path))


@functools.lru_cache(maxsize=4)      # an entry holds the photo and two float masks
def _cache_slot(digest: str, face_index: int, detector: str) -> list[Identity]:
    """An in-process cache keyed by photo content and options (a failed load stores nothing)."""
    return []


def _build(path: Path, data: bytes, face_index: int, detector: str) -> Identity:
    image = read_photo(path, data)   # the bytes that were hashed: the cache key matches the content
    h, w = image.shape[:2]
    if detector == "mediapipe":
        faces = detect_faces(image)
    elif detector == "face-alignment":
        from avatar.face import fa_detector   # torch and face_alignment: only when asked for

        faces = fa_detector.detect_478(image)
    else:
        raise AvatarError(f"unknown face detector {detector!r}", path=path,
                          hint="use 'mediapipe' or 'face-alignment'")
    if not faces:
        small = _small_face(image) if detector == "mediapipe" else None
        if small:
            raise AvatarError(f"the face is too small (about {small:.0f} px wide) to animate", path=path,
                              hint="use a larger or closer photo of the face (at least about "
                                   f"{MIN_EYE_DISTANCE * 2.5:.0f} px wide)")
        raise AvatarError("no face found in the photo", path=path,
                          hint="use a clear, front-facing photo of one person")
    if face_index < 0 or face_index >= len(faces):
        raise AvatarError(f"face_index {face_index} is out of range: the photo has {len(faces)} face(s)",
                          path=path, field="face_index", hint=f"use 0..{len(faces) - 1}")
    if len(faces) > 1:
        msg = f"{path}: {len(faces)} faces found; using face {face_index} (0 = largest; set avatar.face_index to choose)"
        warnings.warn(msg, stacklevel=3)
    lm = faces[face_index].astype(np.float32)
    yaw = estimate_yaw(lm)
    if abs(yaw) > MAX_YAW:
        raise AvatarError(f"the face is turned too far to the side (about {abs(yaw):.0f} degrees)",
                          path=path, hint=f"use a photo facing the camera (within {MAX_YAW:.0f} degrees)")
    eye = float(np.linalg.norm(lm[33] - lm[263]))   # 3D: a turned face is not a small one
    if eye < MIN_EYE_DISTANCE:
        raise AvatarError(f"the face is too small ({eye:.0f} px between the outer eye corners, "
                          f"at least {MIN_EYE_DISTANCE:.0f} px needed)", path=path,
                          hint="use a larger or closer photo of the face")
    return Identity(image=image, landmarks=lm, face_box=face_box(lm, w, h),
                    face_mask=face_mask(lm, (h, w)), person_mask=person_mask(image), source=str(path))


__all__ = ["load_identity", "read_photo", "detect_faces", "estimate_yaw", "face_box", "face_mask",
           "person_mask", "MIN_EYE_DISTANCE", "MAX_YAW"]
