"""Synthesized mouth interior (cavity, teeth, tongue) for the warp renderer.

Painted only inside the inner-lip polygon of the target mesh, so nothing can show
outside the lips; colours come from the photo (lip colour, skin brightness, and the
photo's own teeth when its mouth is open at rest).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avatar.types import eye_distance

# inner lip chains, from the left mouth corner (78) to the right one (308)
INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
OUTER_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
OUTER_LOWER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)


@dataclass(frozen=True)
class MouthStyle:
    cavity: np.ndarray   # (3,) float RGB of the dark back of the mouth
    teeth: np.ndarray    # (3,) float RGB of lit teeth
    tongue: np.ndarray   # (3,) float RGB
    eye: float           # outer-eye-corner distance in pixels of the frames painted
    grain: float = 0.0   # std of the photo's fine noise on the skin, matched on the painted interior


def _poly_mask(shape: tuple[int, int], poly: np.ndarray) -> np.ndarray:
    import cv2

    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.round(poly * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    return m > 127


def mouth_style(image: np.ndarray, lm: np.ndarray, rest_open: float) -> MouthStyle:
    """Colours for the interior, measured on the photo (`lm` in pixels of `image`)."""
    import cv2

    eye = float(eye_distance(lm))
    h, w = image.shape[:2]
    outer = np.concatenate([lm[list(OUTER_UPPER), :2], lm[list(OUTER_LOWER[::-1]), :2]])
    inner = np.concatenate([lm[list(INNER_UPPER), :2], lm[list(INNER_LOWER[::-1]), :2]])
    lips_m = _poly_mask((h, w), outer) & ~_poly_mask((h, w), inner)
    lip = np.median(image[lips_m], 0).astype(np.float64) if lips_m.sum() > 10 else np.array([150.0, 80, 80])
    # skin brightness: cheeks under the eyes
    cheek = lm[[50, 280], :2].round().astype(int)
    r = max(2, int(eye * 0.08))
    crops = [image[max(0, y - r):y + r, max(0, x - r):x + r] for x, y in cheek]
    skin = np.median(np.concatenate([c.reshape(-1, 3) for c in crops]), 0).astype(np.float64)
    grain = float(np.median([np.std(c.astype(np.float32) - cv2.GaussianBlur(c.astype(np.float32), (0, 0), 1.5))
                             for c in crops if c.size]))
    light = float(np.clip(skin.mean() / 170.0, 0.55, 1.15))
    # teeth: about as bright as the face's highlights (lit like the photo), never glowing
    hull = cv2.convexHull(np.round(lm[:, :2]).astype(np.int32))
    face_m = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(face_m, hull, 1)
    lum = image[face_m > 0].mean(1) if face_m.any() else skin.mean(keepdims=True)
    teeth = float(np.clip(0.92 * np.percentile(lum, 92), 90, 215)) * np.array([1.02, 1.0, 0.95])
    if rest_open > 0.04:          # the photo shows its teeth: use their colour
        in_m = _poly_mask((h, w), inner)
        px = image[in_m].astype(np.float64)
        if len(px) > 20:
            lum = px.mean(1)
            bright = px[lum >= np.percentile(lum, 70)]
            teeth = np.median(bright, 0)
    cavity = lip * np.array([0.22, 0.12, 0.12]) + 6.0
    tongue = lip * np.array([0.80, 0.55, 0.55]) * light
    return MouthStyle(cavity, np.clip(teeth, 0, 255), np.clip(tongue, 0, 255), eye, grain)


def _lip_seam(frame: np.ndarray, line: np.ndarray, style: MouthStyle, strength: float) -> None:
    import cv2

    h, w = frame.shape[:2]
    x0, y0 = np.maximum(np.floor(line.min(0)).astype(int) - 3, 0)
    x1, y1 = np.minimum(np.ceil(line.max(0)).astype(int) + 4, (w, h))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    thick = max(1, int(round(0.012 * style.eye)))
    cv2.polylines(mask, [np.round((line - (x0, y0)) * 16).astype(np.int32)], False, 255, thick, cv2.LINE_AA, shift=4)
    a = mask.astype(np.float32)[..., None] / 255.0 * 0.45 * float(np.clip(strength, 0, 1))
    roi = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = np.clip(roi * (1 - a) + style.cavity * 1.3 * a, 0, 255).astype(np.uint8)


def paint_mouth(frame: np.ndarray, upper: np.ndarray, lower: np.ndarray, style: MouthStyle) -> None:
    """Paint the interior into `frame` (H, W, 3 uint8, in place) between the inner-lip chains.

    upper, lower: (11, 2) inner-lip points (INNER_UPPER / INNER_LOWER order) in frame pixels.
    """
    import cv2

    e = style.eye
    poly = np.concatenate([upper, lower[::-1]]).astype(np.float32)
    gap_c = float(np.linalg.norm(upper[5] - lower[5]))
    if gap_c < 1.0:               # lips together: a soft dark seam where they meet
        _lip_seam(frame, (upper + lower) / 2, style, strength=1.0 - gap_c)
        return
    h, w = frame.shape[:2]
    x0, y0 = np.floor(poly.min(0)).astype(int) - 2
    x1, y1 = np.ceil(poly.max(0)).astype(int) + 3
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    ph, pw = y1 - y0, x1 - x0
    mask = np.zeros((ph, pw), np.uint8)
    cv2.fillPoly(mask, [np.round((poly - (x0, y0)) * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    if not mask.any():
        return
    alpha = mask.astype(np.float32)[..., None] / 255.0 * min(1.0, gap_c - 1.0)

    # mouth frame: along the corner-to-corner axis
    c0, c1 = upper[0], upper[-1]
    ax = (c1 - c0) / max(np.linalg.norm(c1 - c0), 1e-6)
    ay = np.array([-ax[1], ax[0]])
    mid = (c0 + c1) / 2
    half = max(np.linalg.norm(c1 - c0) / 2, 1.0)
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    u = (xs - mid[0]) * ax[0] + (ys - mid[1]) * ax[1]
    v = (xs - mid[0]) * ay[0] + (ys - mid[1]) * ay[1]
    uu, vu = (upper - mid) @ ax, (upper - mid) @ ay
    ul, vl = (lower - mid) @ ax, (lower - mid) @ ay
    top = np.interp(u, np.sort(uu), vu[np.argsort(uu)])
    bot = np.interp(u, np.sort(ul), vl[np.argsort(ul)])
    gap = np.maximum(bot - top, 1e-3)
    depth = np.clip((v - top) / gap, 0, 1)                 # 0 at the upper lip, 1 at the lower
    side = np.clip(np.abs(u) / half, 0, 1)                 # 0 centre, 1 corner

    img = style.cavity * (1.15 - 0.45 * depth[..., None])  # back of the mouth, darker low
    # tongue: a low mound at the back
    t_h = np.minimum(0.3 * gap, 0.06 * e) * np.sqrt(np.clip(1 - (u / (0.75 * half)) ** 2, 0, 1))
    tongue_top = bot - t_h
    t_a = np.clip((v - tongue_top) / 1.5 + 0.5, 0, 1)[..., None] * 0.9
    t_tone = 0.78 - 0.3 * np.clip((v - tongue_top) / np.maximum(t_h, 1.0), 0, 1)   # lit on top
    img = img * (1 - t_a) + style.tongue * t_tone[..., None] * t_a
    # the lower lip's inner edge shades what is right above it
    img = img * (1 - 0.45 * np.clip(1 - (bot - v) / max(0.02 * e, 1.0), 0, 1))[..., None]
    # lower teeth only when wide open
    gap_e = gap_c / e
    low_h = (np.minimum(0.1 * gap, 0.025 * e) * np.clip((gap_e - 0.22) / 0.08, 0, 1)
             * np.clip(1 - (u / (0.55 * half)) ** 2, 0, 1))
    lo_a = np.clip((v - (bot - low_h)) / 1.0 + 0.5, 0, 1) * (low_h > 0.5)
    # upper teeth: a band hanging from the upper lip
    up_h = np.minimum(0.5 * gap, 0.095 * e) * (1 - 0.35 * side ** 2)
    up_a = np.clip(((top + up_h) - v) / 1.0 + 0.5, 0, 1)
    edge = 1.0 - 0.08 * np.exp(-(((np.abs(u) + 0.5 * 0.095 * e) % (0.095 * e) - 0.5 * 0.095 * e) / (0.01 * e + 0.4)) ** 2)
    lip_shadow = 0.9 + 0.1 * np.clip((v - top) / max(0.02 * e, 1.0), 0, 1)   # the upper lip shades the teeth
    for a, shade in ((lo_a, 0.75), (up_a, 1.0)):
        tone = shade * (1.0 - 0.35 * side ** 2) * edge * lip_shadow
        img = img * (1 - a[..., None]) + (style.teeth * tone[..., None]) * a[..., None]
    # soft shadow from the lips into the cavity, strongest at the corners
    shadow = 1.0 - 0.5 * side ** 2
    img = img * shadow[..., None]
    img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), max(0.5, 0.006 * e))
    if style.grain > 0.3:        # the photo's grain, as a fixed per-pixel pattern (no flicker)
        h_ = (xs.astype(np.int64) * 73856093) ^ (ys.astype(np.int64) * 19349663)
        noise = (h_ % 2003).astype(np.float32) / 2003.0 - 0.5
        img = img + (noise * (3.46 * min(0.5 * style.grain, 2.5)))[..., None]
    roi = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = np.clip(roi * (1 - alpha) + img * alpha, 0, 255).astype(np.uint8)
