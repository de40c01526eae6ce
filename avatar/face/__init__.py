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
MAX_ROLL = 35.0           # degrees the eyes' line may lean in the picture before a warning (a sideways photo)
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
    sigma = max(1.0, 0.08 * float(eye_distance(lm)))
    # filled and blurred around the hull only (OpenCV's kernel reaches 3 sigma): the same mask as
    # blurring the whole picture, in a fraction of the time on a large photo (1 s at 12 MP)
    m = int(np.ceil(4 * sigma)) + 2
    h, w = shape
    x0, y0 = np.maximum(hull.reshape(-1, 2).min(0) - m, 0)
    x1, y1 = np.minimum(hull.reshape(-1, 2).max(0) + m + 1, (w, h))
    if x1 > x0 and y1 > y0:
        roi = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillConvexPoly(roi, hull - (x0, y0), 255, cv2.LINE_AA)
        f = int(sigma // 8)   # a wide feather (a face 200+ px between the eyes): blurred at 1/f of the size
        if f > 1:
            small = cv2.resize(roi, ((x1 - x0 + f - 1) // f, (y1 - y0 + f - 1) // f), interpolation=cv2.INTER_AREA)
            roi = cv2.resize(cv2.GaussianBlur(small, (0, 0), sigma / f), (x1 - x0, y1 - y0),
                             interpolation=cv2.INTER_LINEAR)
        else:
            roi = cv2.GaussianBlur(roi, (0, 0), sigma)
        mask[y0:y1, x0:x1] = roi
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


TILE_MIN = 512            # the smallest tile of the small-face search (smaller ones see faces that are not there)
FACE_PER_EYE = 1.7        # the detector's face-box width / the distance between the outer eye corners
MIN_FACE_WIDTH = int(round(MIN_EYE_DISTANCE * FACE_PER_EYE))   # px: the smallest face that is animated
CROP_MARGIN = 4.0         # a found face's crop: this many face widths on a side, upscaled to CROP_SIDE
CROP_SIDE = 512


def _tiles(h: int, w: int) -> list[tuple[int, int, int]]:
    """(x, y, side) of a pyramid of square tiles, half-overlapping: the short side, halved while
    over TILE_MIN, then TILE_MIN (none for a photo under TILE_MIN)."""
    sides, side = [], min(h, w)
    while side > TILE_MIN:
        sides.append(side)
        side //= 2
    sides += [TILE_MIN] if min(h, w) >= TILE_MIN else []
    out = []
    for side in sides:
        step = side // 2
        ys = sorted({*range(0, h - side + 1, step), h - side})
        xs = sorted({*range(0, w - side + 1, step), w - side})
        out += [(x, y, side) for y in ys for x in xs]
    return out


def find_small_faces(image: np.ndarray) -> list[tuple[float, float, float]]:
    """(centre x, centre y, width) in px of every face MediaPipe's full-range detector finds in the
    whole photo or in a pyramid of tiles (a face of 20-30 px in a large photo is seen in a tile
    of 512 px; the search stops at the first level that finds any), widest first, one per face."""
    import mediapipe as mp

    from avatar.face.quiet import native_quiet

    found: list[tuple[float, float, float]] = []
    h, w = image.shape[:2]
    level = 0
    with native_quiet(), mp.solutions.face_detection.FaceDetection(model_selection=1,
                                                                   min_detection_confidence=0.5) as fd:
        for x, y, side in [(0, 0, 0)] + _tiles(h, w):
            if found and side != level:   # a level of the pyramid found faces: smaller tiles see smaller ones
                break
            level = side
            tile = image if side == 0 else image[y:y + side, x:x + side]
            small, scale = _downscale(tile)
            res = fd.process(np.ascontiguousarray(small))
            for d in res.detections or []:
                b = d.location_data.relative_bounding_box
                th, tw = small.shape[:2]
                face = (x + (b.xmin + b.width / 2) * tw / scale, y + (b.ymin + b.height / 2) * th / scale,
                        b.width * tw / scale)
                # the same face seen again (centres within half a face): keep the widest view of it
                i = next((i for i, f in enumerate(found)
                          if np.hypot(face[0] - f[0], face[1] - f[1]) <= 0.5 * max(face[2], f[2])), None)
                if i is None:
                    found.append(face)
                else:
                    found[i] = max(found[i], face, key=lambda f: f[2])
    return sorted(found, key=lambda f: -f[2])


def _mesh_near(image: np.ndarray, face: tuple[float, float, float]) -> np.ndarray | None:
    """The mesh of the face around (cx, cy, width), fitted on an upscaled crop; None if it fits none."""
    import cv2

    cx, cy, fw = face
    h, w = image.shape[:2]
    side = max(int(round(fw * CROP_MARGIN)), 16)
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    crop = np.zeros((side, side, 3), np.uint8)
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    crop[ya - y0:yb - y0, xa - x0:xb - x0] = image[ya:yb, xa:xb]
    scale = CROP_SIDE / side
    big = cv2.resize(crop, (CROP_SIDE, CROP_SIDE), interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
    meshes = _mesh(big)
    if not meshes:
        return None
    lm = min(meshes, key=lambda m: float(np.hypot(*(m[1, :2] - CROP_SIDE / 2))))
    lm = lm / scale
    lm[:, :2] += (x0, y0)
    return lm


def _detect(image: np.ndarray) -> tuple[list[np.ndarray], list[tuple[float, float, float]]]:
    """(meshes, largest first; the small-face search's finds, when it ran)."""
    faces = _mesh(image)
    small: list[tuple[float, float, float]] = []
    if not faces:
        small = find_small_faces(image)
        for face in small:
            lm = _mesh_near(image, face)
            if lm is not None and all(np.hypot(*(lm[1, :2] - f[1, :2])) > 0.5 * eye_distance(lm) for f in faces):
                faces.append(lm)
    return sorted(faces, key=lambda lm: -float(eye_distance(lm))), small


def detect_faces(image: np.ndarray) -> list[np.ndarray]:
    """All faces as (478, 3) float32 meshes in pixels of `image`, largest first.

    MediaPipe's mesh wants faces that fill a fair part of the picture; when the whole photo
    gives nothing (a small face in a wide shot), the full-range face detector looks in a
    pyramid of overlapping tiles (find_small_faces) and the mesh is fitted on an upscaled
    crop around each face it finds.
    """
    return _detect(image)[0]


def _too_small(path: Path, width: float, eye: float | None = None) -> AvatarError:
    eyes = f", {eye:.0f} px between the outer eye corners" if eye is not None else ""
    need = f", {MIN_EYE_DISTANCE:.0f} px between them" if eye is not None else ""
    return AvatarError(f"face too small (about {width:.0f} px wide{eyes}; at least {MIN_FACE_WIDTH} px{need}): "
                       "use a closer photo", path=path)


def scaled(ident: Identity, s: float) -> Identity:
    """The presenter as if the photo were `s` times its size: the picture resampled (INTER_AREA when
    smaller), the mesh, face box and masks with it. A renderer animating it works on about s**2
    of the pixels (a 12 MP phone photo shown in a small box: avatar.build.scene)."""
    import cv2

    h, w = ident.image.shape[:2]
    nw, nh = max(2, int(round(w * s))), max(2, int(round(h * s)))
    sx, sy = nw / w, nh / h
    lm = ident.landmarks.astype(np.float32).copy()
    lm[:, 0] = (lm[:, 0] + 0.5) * sx - 0.5          # pixel centres map as cv2.resize maps them
    lm[:, 1] = (lm[:, 1] + 0.5) * sy - 0.5
    lm[:, 2] *= (sx + sy) / 2
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    return dataclasses.replace(
        ident, image=cv2.resize(ident.image, (nw, nh), interpolation=interp), landmarks=lm,
        face_box=face_box(lm, nw, nh), face_mask=face_mask(lm, (nh, nw)),
        person_mask=cv2.resize(ident.person_mask.astype(np.float32), (nw, nh), interpolation=interp))


def load_identity(path: str | Path, face_index: int = 0, detector: str = "mediapipe", store=None) -> Identity:
    """Prepare the presenter from one photo (JPEG/PNG/WebP). face_index 0 = the largest face.
    store: an avatar.face.store.IdentityStore that keeps what MediaPipe measured on disk, for
    other processes and later runs (the same Identity either way)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError:
        raise AvatarError("photo not found or unreadable", path=path,
                          hint="check the avatar photo path") from None
    digest = hashlib.sha1(data).hexdigest()
    box = _cache_slot(digest, face_index, detector)
    if not box:
        image = read_photo(path, data)   # the bytes that were hashed: the cache key matches the content
        if store is None:
            measured = _measure(path, image, face_index, detector)
        else:
            measured = store.get_or_build(store.key(digest, face_index, detector),
                                          lambda: _measure(path, image, face_index, detector))
        box.append(_assemble(path, image, face_index, measured))
    ident = box[0]
    return ident if ident.source == str(path) else dataclasses.replace(ident, source=str(path))


@functools.lru_cache(maxsize=4)      # an entry holds the photo and two float masks
def _cache_slot(digest: str, face_index: int, detector: str) -> list[Identity]:
    """An in-process cache keyed by photo content and options (a failed load stores nothing)."""
    return []


def _assemble(path: Path, image: np.ndarray, face_index: int, measured: dict[str, np.ndarray]) -> Identity:
    """The Identity from the decoded photo and what _measure found in it (stored or fresh)."""
    h, w = image.shape[:2]
    lm, faces = measured["landmarks"], int(measured["faces"])
    if faces > 1:
        msg = f"{path}: {faces} faces found; using face {face_index} (0 = largest; set avatar.face_index to choose)"
        warnings.warn(msg, stacklevel=3)
    roll = estimate_roll(lm)
    if abs(roll) > MAX_ROLL:   # animated as it is (head motion about that tilt), but most likely not meant
        warnings.warn(f"{path}: the face leans about {abs(roll):.0f} degrees in the picture, so the presenter "
                      "will be shown that way; if the photo is sideways or upside down, rotate it upright",
                      stacklevel=3)
    return Identity(image=image, landmarks=lm, face_box=face_box(lm, w, h),
                    face_mask=face_mask(lm, (h, w)), person_mask=measured["person_mask"], source=str(path))


def estimate_roll(lm: np.ndarray) -> float:
    """Degrees the line between the outer eye corners (mesh points 33 and 263) leans from the
    horizontal, in -180..180: 0 for an upright face, about +-90 for a sideways photo, 180 upside down."""
    dx, dy = float(lm[263, 0] - lm[33, 0]), float(lm[263, 1] - lm[33, 1])
    return float(np.degrees(np.arctan2(dy, dx)))


def _measure(path: Path, image: np.ndarray, face_index: int, detector: str) -> dict[str, np.ndarray]:
    """What MediaPipe (or face-alignment) finds in the photo: the chosen face's landmarks, the
    person mask and the number of faces; AvatarError (naming `path`) when it cannot be animated."""
    h, w = image.shape[:2]
    small: list = []
    if detector == "mediapipe":
        faces, small = _detect(image)
    elif detector == "face-alignment":
        from avatar.face import fa_detector   # torch and face_alignment: only when asked for

        faces = fa_detector.detect_478(image)
    else:
        raise AvatarError(f"unknown face detector {detector!r}", path=path,
                          hint="use 'mediapipe' or 'face-alignment'")
    if not faces:
        if small:
            raise _too_small(path, small[0][2])
        raise AvatarError("no face found in the photo", path=path,
                          hint="use a clear, front-facing photo of one person")
    if face_index < 0 or face_index >= len(faces):
        raise AvatarError(f"face_index {face_index} is out of range: the photo has {len(faces)} face(s)",
                          path=path, field="face_index", hint=f"use 0..{len(faces) - 1}")
    lm = faces[face_index].astype(np.float32)
    yaw = estimate_yaw(lm)
    if abs(yaw) > MAX_YAW:
        raise AvatarError(f"the face is turned too far to the side (about {abs(yaw):.0f} degrees)",
                          path=path, hint=f"use a photo facing the camera (within {MAX_YAW:.0f} degrees)")
    eye = float(np.linalg.norm(lm[33] - lm[263]))   # 3D: a turned face is not a small one
    if eye < MIN_EYE_DISTANCE:
        raise _too_small(path, eye * FACE_PER_EYE, eye)
    return {"landmarks": lm, "person_mask": person_mask(image), "faces": np.array(len(faces))}


__all__ = ["load_identity", "scaled", "read_photo", "detect_faces", "estimate_yaw", "estimate_roll", "face_box", "face_mask",
           "person_mask", "find_small_faces", "MIN_EYE_DISTANCE", "MIN_FACE_WIDTH", "MAX_YAW", "MAX_ROLL"]
