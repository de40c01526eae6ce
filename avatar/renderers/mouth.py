"""Synthesized mouth interior (cavity, teeth, tongue) for the warp renderer.

Painted only inside the inner-lip polygon of the target mesh, so nothing can show
outside the lips. Upper teeth hang from a line fixed to the skull (the photo's inner
upper lip moved by the head pose only), so they never move with the jaw; lower teeth
rise from the lower lip, which the jaw carries. When the photo shows its teeth, its own
interior is used: the upper part follows the skull, the lower part the jaw, and what
opens between them is dark cavity. Otherwise teeth are drawn: one tooth per arch
position (narrower towards the corners, each a little uneven in width and tone), soft
dark gaps between them, a gum line above, lower teeth and the tongue in proportion to the
opening, lit like the photo's face and shaded by the lips. Everything painted is blurred
to the photo's own sharpness around the lips (photo_blur).
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
    gum: np.ndarray | None = None       # (3,) float RGB
    photo: np.ndarray | None = None     # crop of the photo around its open mouth (it shows teeth)
    photo_upper: np.ndarray | None = None   # (11, 2) inner upper lip in `photo` pixels
    photo_lower: np.ndarray | None = None   # (11, 2) inner lower lip in `photo` pixels
    lip: np.ndarray | None = None       # (3,) float RGB: the photo's median lip colour
    bank: object | None = None          # avatar.face.appearance.MouthBank: real interiors by shape
    bank_gain: np.ndarray | None = None  # (3,) colour match of the bank's interiors to the photo
    blur: float = 0.0                   # the photo's own blur around the mouth (Gaussian sigma, px)


TEETH_SHOWN = 0.035      # photo mouth opening (eye distances) above which its own interior is reused
# visible widths of the upper teeth from the midline out (central, lateral, canine, premolars...),
# in eye distances along the arch
TOOTH_WIDTHS = (0.082, 0.066, 0.058, 0.052, 0.05, 0.05, 0.05)
# each tooth's width over TOOTH_WIDTHS and its darkening, right then left of the midline
# (a fixed, slightly uneven set: no two neighbours alike, never a regular row of bars)
TOOTH_JITTER = ((0.04, -0.06, 0.08, -0.03, 0.05, -0.04, 0.0), (-0.03, 0.07, -0.05, 0.06, -0.02, 0.04, 0.0))
TOOTH_TONE = ((0.0, 0.05, 0.02, 0.07, 0.04, 0.08, 0.1), (0.02, 0.0, 0.06, 0.03, 0.08, 0.05, 0.1))
UPPER_SHARE = 0.6        # share of the photo's open mouth taken as upper teeth (the rest: lower, with the jaw)
LIP_BAND = 0.012         # lip flesh inside MediaPipe's inner-lip contour, in eye distances
TOOTH_HEIGHT = 0.1       # upper incisor height, in eye distances
# TIP_DROP, CAVITY and TEETH_GAIN: chosen by self-reenactment mouth SSIM on train clips outside
# bench_reenact's six (LivePortrait d10/d11, video-retalking 1, VidTIMIT fadg0, five PC-AVS crops)
TIP_DROP = 0.015         # upper incisor tips below the photo's inner upper lip (shown when the lips part)
CAVITY = (0.4, 0.25, 0.25)   # the back of the mouth over the photo's lip colour (lit, not black)
TEETH_GAIN = 0.9         # lit teeth over the face's highlights (99th percentile)
TONGUE_H = (0.45, 0.09)  # tongue mound at the back: share of the opening, at most this many eye distances
LOW_H = (0.3, 0.06)      # lower teeth shown: share of the opening, at most this many eye distances
LOW_RAMP = (0.06, 0.08)  # lower teeth appear from this opening (eye distances), fully shown this much wider
SEAM_DARK = 0.25         # the gaps between upper teeth: darkest at the tips (the embrasures), ...
SEAM_POW = 3.0           # ... fading towards the gum (no full-height dark bars)
ROUND = 0.06             # each tooth a little darker at its sides (rounded), mostly flat and bright
TONGUE_RGB = (1.05, 0.8, 0.8)   # tongue over the photo's lip colour (pinker and lighter than the lips)
LOW_TONE = 0.72          # lower teeth: in the upper ones' shadow
REBLUR = 2.0             # px: the known extra blur that photo_blur compares the photo with
SOBEL_BLUR = 0.75        # px: what photo_blur reads on a perfectly sharp step (the pixel grid and Sobel's smoothing)
EDGE_MAX = 0.5           # photo_blur reads the edge centres steeper than this share of the steepest one
PAINT_BLUR = 0.5         # px: the painted interior's own softness (antialiased edges) before matching the photo


def _poly_mask(shape: tuple[int, int], poly: np.ndarray) -> np.ndarray:
    import cv2

    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.round(poly * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    return m > 127


def photo_blur(gray: np.ndarray) -> float:
    """Gaussian sigma (px) of the blur of `gray` (float, a region with edges, e.g. the lips),
    from its strongest edges: a step edge blurred by s0 has its steepest gradient ~ 1/s0, and
    blurred again by REBLUR ~ 1/sqrt(s0^2 + REBLUR^2); the ratio of the two gives s0."""
    import cv2

    if gray.shape[0] < 8 or gray.shape[1] < 8:
        return 0.0
    g = gray.astype(np.float32)

    def grad(x):
        gx, gy = cv2.Sobel(x, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(x, cv2.CV_32F, 0, 1, ksize=3)
        return np.hypot(gx, gy)[2:-2, 2:-2]

    g0 = grad(g)
    g1 = grad(cv2.GaussianBlur(g, (0, 0), REBLUR))
    edges = (g0 >= cv2.dilate(g0, np.ones((3, 3), np.uint8))) & (g0 >= EDGE_MAX * g0.max())   # edge centres
    if not edges.any() or g0[edges].mean() < 1e-3:
        return 0.0
    rho = float(np.clip(g1[edges].mean() / g0[edges].mean(), 0.0, 0.98))
    return float(np.sqrt(max(REBLUR ** 2 * rho ** 2 / (1 - rho ** 2) - SOBEL_BLUR ** 2, 0.0)))


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
    teeth = float(np.clip(TEETH_GAIN * np.percentile(lum, 99), 110, 240)) * np.array([1.0, 0.96, 0.9])
    # the photo's sharpness around the lips: the painted parts are blurred to match it
    lo_, hi_ = outer.min(0) - 0.15 * eye, outer.max(0) + 0.15 * eye
    bx0, by0 = np.maximum(np.floor(lo_).astype(int), 0)
    bx1, by1 = np.minimum(np.ceil(hi_).astype(int), (w, h))
    blur = photo_blur(image[by0:by1, bx0:bx1].astype(np.float32).mean(2)) if bx1 > bx0 and by1 > by0 else 0.0
    photo = pu = pl = None
    if rest_open > TEETH_SHOWN:          # the photo shows its teeth: keep its interior
        in_m = _poly_mask((h, w), inner)
        px = image[in_m].astype(np.float64)
        if len(px) > 20:
            lum = px.mean(1)
            bright = px[lum >= np.percentile(lum, 70)]
            teeth = np.median(bright, 0)
            x0, y0 = np.maximum(np.floor(inner.min(0)).astype(int) - 2, 0)
            x1, y1 = np.minimum(np.ceil(inner.max(0)).astype(int) + 3, (w, h))
            photo = np.ascontiguousarray(image[y0:y1, x0:x1])
            pu, pl = lm[list(INNER_UPPER), :2] - (x0, y0), lm[list(INNER_LOWER), :2] - (x0, y0)
    cavity = lip * np.array(CAVITY) + 6.0
    tongue = lip * np.array(TONGUE_RGB) * light
    gum = lip * np.array([0.95, 0.62, 0.62])
    return MouthStyle(cavity, np.clip(teeth, 0, 255), np.clip(tongue, 0, 255), eye, grain, np.clip(gum, 0, 255),
                      photo, pu, pl, lip, blur=blur)


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


def _chain(u: np.ndarray, pts: np.ndarray, mid: np.ndarray, ax: np.ndarray, ay: np.ndarray) -> np.ndarray:
    """The chain `pts` as v(u) in the mouth frame (mid, ax, ay), sampled at `u`."""
    pu, pv = (pts - mid) @ ax, (pts - mid) @ ay
    o = np.argsort(pu)
    return np.interp(u, pu[o], pv[o])


def _tooth_pattern(s: np.ndarray, e: float, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(shade across each tooth, distance to the nearest gap in px) at arch position s (px from
    the midline, where the two central incisors meet). Real rows are not identical bars: each
    tooth's width and tone differ a little, left from right (a fixed pattern, TOOTH_JITTER and
    TOOTH_TONE: the same teeth in every frame), and each is rounded, lit in its middle."""
    left = s < 0
    a = np.abs(s)
    shade = np.ones_like(a)
    dist = np.zeros_like(a)
    for side in (0, 1):
        widths = np.array(TOOTH_WIDTHS) * (1 + np.array(TOOTH_JITTER[side]))
        edges = np.concatenate([[0.0], np.cumsum(widths)]) * e * scale
        k = np.clip(np.searchsorted(edges, a) - 1, 0, len(edges) - 2)
        lo, hi = edges[k], edges[k + 1]
        frac = np.clip((a - lo) / (hi - lo), 0, 1)
        sel = left if side else ~left
        shade = np.where(sel, (1.0 - ROUND * (2 * frac - 1) ** 2) * (1 - np.asarray(TOOTH_TONE[side])[k]), shade)
        dist = np.where(sel, np.minimum(a - lo, hi - a), dist)
    return shade, dist


def _drawn_interior(u, v, top, bot, tline, half, style: MouthStyle, upper_teeth: bool = True) -> np.ndarray:
    """The synthetic interior: cavity, tongue, upper teeth from `tline`, lower teeth, gum.
    upper_teeth=False: the photo's own teeth go below `tline` (gum above it, cavity below)."""
    e = style.eye
    gap = np.maximum(bot - top, 1e-3)
    depth = np.clip((v - top) / gap, 0, 1)                 # 0 at the upper lip, 1 at the lower
    side = np.clip(np.abs(u) / half, 0, 1)                 # 0 centre, 1 corner
    img = style.cavity * (1.15 - 0.5 * depth[..., None])   # back of the mouth, darker low
    # tongue: a low mound at the back
    t_h = np.minimum(TONGUE_H[0] * gap, TONGUE_H[1] * e) * np.sqrt(np.clip(1 - (u / (0.75 * half)) ** 2, 0, 1))
    tongue_top = bot - t_h
    t_a = np.clip((v - tongue_top) / 1.5 + 0.5, 0, 1)[..., None] * 0.9
    t_tone = 0.78 - 0.3 * np.clip((v - tongue_top) / np.maximum(t_h, 1.0), 0, 1)   # lit on top
    img = img * (1 - t_a) + style.tongue * t_tone[..., None] * t_a
    # the arch: position along the dental arch from the midline (teeth narrow towards the corners)
    s = half * np.arcsin(np.clip(u / (1.1 * half), -1, 1))
    shade, dist = _tooth_pattern(s, e)
    gap_w = 0.006 * e + 0.4
    occl = 1.0 - 0.5 * side ** 3                          # the cheeks shade the back teeth
    # upper teeth hang from the skull: tips a little below the photo's lip seam, the rest
    # hidden by the upper lip until it lifts; their tips are a little translucent
    up_h = TOOTH_HEIGHT * e * (1 - 0.35 * side ** 2)
    vt = v - (tline + TIP_DROP * e * (1 - 0.5 * side ** 2) - up_h) if upper_teeth else v - tline
    up_h = up_h if upper_teeth else np.zeros_like(up_h)
    up_a = np.clip((up_h - vt) / 1.0 + 0.5, 0, 1) * np.clip(vt / 1.0 + 0.5, 0, 1)
    tip = np.clip((vt - 0.75 * up_h) / np.maximum(0.25 * up_h, 1), 0, 1)
    at_tip = (0.4 + 0.6 * np.clip(vt / np.maximum(up_h, 1), 0, 1)) ** SEAM_POW
    seam = 1.0 - SEAM_DARK * np.exp(-(dist / gap_w) ** 2) * at_tip
    lip_shadow = 0.86 + 0.14 * np.clip((v - top) / max(0.03 * e, 1.0), 0, 1)   # under the upper lip
    tone = shade * occl * seam * lip_shadow * (1 - 0.12 * tip)
    img = img * (1 - up_a[..., None]) + (style.teeth * tone[..., None]) * up_a[..., None]
    # gum above the teeth (shows when the upper lip lifts above the skull line)
    gum_a = np.clip(-vt / 1.0 + 0.5, 0, 1)
    gum = style.gum if style.gum is not None else style.cavity * 3
    img = img * (1 - gum_a[..., None]) + (gum * (0.8 * occl * lip_shadow)[..., None]) * gum_a[..., None]
    # lower teeth: rise from the lower lip with the jaw, shown when the mouth is well open
    gap_c = float(np.max(gap))
    low_h = (np.minimum(LOW_H[0] * gap, LOW_H[1] * e) * np.clip((gap_c / e - LOW_RAMP[0]) / LOW_RAMP[1], 0, 1)
             * np.clip(1 - (u / (0.7 * half)) ** 2, 0, 1))
    lo_a = np.clip((v - (bot - low_h)) / 1.0 + 0.5, 0, 1) * (low_h > 0.5)
    shade_l, dist_l = _tooth_pattern(s, e, 0.68)
    seam_l = 1.0 - 0.2 * np.exp(-(dist_l / gap_w) ** 2)
    tone_l = LOW_TONE * shade_l * occl * seam_l
    img = img * (1 - lo_a[..., None]) + (style.teeth * tone_l[..., None]) * lo_a[..., None]
    # the lower lip's inner edge shades what is right above it; the corners are in shadow
    img = img * (1 - 0.35 * np.clip(1 - (bot - v) / max(0.02 * e, 1.0), 0, 1))[..., None]
    return img * (1.0 - 0.45 * side ** 4)[..., None]


def _photo_interior(u, v, top, bot, tline, half, style: MouthStyle):
    """The photo's own interior placed in this mouth: (image, weight). Its upper part (the
    upper teeth) hangs from the skull line, its lower part rides on the lower lip (the jaw);
    the weight is 0 where the photo has nothing to show (the mouth opens wider than the
    photo's, or the upper lip lifts above its teeth): drawn interior there."""
    import cv2

    pu, pl = style.photo_upper, style.photo_lower
    c0, c1 = pu[0], pu[-1]
    ax = (c1 - c0) / max(np.linalg.norm(c1 - c0), 1e-6)
    ay = np.array([-ax[1], ax[0]])
    mid = (c0 + c1) / 2
    half_p = max(np.linalg.norm(c1 - c0) / 2, 1.0)
    up = u * (half_p / half)
    top_p, bot_p = _chain(up, pu, mid, ax, ay), _chain(up, pl, mid, ax, ay)
    split = top_p + UPPER_SHARE * (bot_p - top_p)      # the photo's upper teeth above, lower teeth below
    v_up = top_p + (v - tline)                         # hangs from the skull
    v_lo = bot_p - (bot - v)                           # rides on the lower lip (the jaw)
    ok_up = (v_up >= top_p) & (v_up <= split)
    ok_lo = (v_lo >= split) & (v_lo <= bot_p - 1.0)
    use_up = ok_up & (~ok_lo | (v - top < UPPER_SHARE * (bot - top)))
    vp = np.where(use_up, v_up, v_lo)
    ok = (use_up | ok_lo).astype(np.float32)
    mx = (mid[0] + up * ax[0] + vp * ay[0]).astype(np.float32)
    my = (mid[1] + up * ax[1] + vp * ay[1]).astype(np.float32)
    img = cv2.remap(style.photo, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    weight = cv2.GaussianBlur(ok, (0, 0), max(0.6, 0.008 * style.eye))
    return img, weight[..., None]


def _bank_interior(u, v, top, bot, half, upper, lower, style: MouthStyle) -> np.ndarray:
    """The learned interiors nearest this mouth's shape, stretched between its inner lips."""
    import cv2

    e = style.eye
    patch = style.bank.blend(float(np.linalg.norm(upper[5] - lower[5]) / e),
                             float(np.linalg.norm(upper[-1] - upper[0]) / e))
    if style.bank_gain is not None:
        patch = patch * style.bank_gain.astype(np.float32)
    rows, cols = patch.shape[:2]
    mx = ((np.clip(u / half, -1, 1) + 1) / 2 * (cols - 1)).astype(np.float32)
    my = (np.clip((v - top) / np.maximum(bot - top, 1e-3), 0, 1) * (rows - 1)).astype(np.float32)
    return cv2.remap(np.ascontiguousarray(patch, np.float32), mx, my, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def _tongue(img, u, v, top, bot, half, style: MouthStyle, amount: float) -> np.ndarray:
    """The tongue brought forward into view (Motion.tongue, 0..1) over any interior: a rounded
    front rising from behind the lower lip, its tip reaching towards the upper teeth at 1
    (th, l), lower for t d n, a broad low body for wide vowels. Every term is continuous in
    `amount` and the lip shapes, so the tongue grows and recedes smoothly (no flicker) and
    is exactly absent at 0."""
    e = style.eye
    gap = np.maximum(bot - top, 1e-3)
    a = float(np.clip(amount, 0.0, 1.0))
    reach = (0.1 + 0.6 * a) * gap                           # height of the tongue above the lower lip
    w_t = half * (0.75 - 0.25 * a)                           # the tip narrows as it comes up
    r = np.clip(u / max(w_t, 1.0), -1, 1)
    edge = bot - reach * np.sqrt(np.clip(1 - r ** 2, 0, 1))  # the tongue's top contour
    soft = max(1.2, 0.012 * e)
    inside = np.clip((v - edge) / soft + 0.5, 0, 1) * np.clip((1 - np.abs(u) / max(w_t, 1.0)) * w_t / soft, 0, 1)
    alpha = inside * np.clip(a / 0.15, 0, 1) * 0.9
    depth = np.clip((v - edge) / np.maximum(reach, 1.0), 0, 1)
    groove = 1.0 - 0.1 * np.exp(-(u / max(0.05 * e, 1.0)) ** 2)    # the midline furrow
    rim = np.clip((v - edge) / max(3 * soft, 1.0), 0, 1)          # lit along its top, in shadow below
    tone = (0.6 + 0.3 * rim * (1 - depth) ** 2) * groove * (1.0 - 0.45 * r ** 2)
    colour = style.tongue * tone[..., None]
    return img * (1 - alpha[..., None]) + colour * alpha[..., None]


def _lip_band(img, roi, u, v, top, bot, mid, ax, ay, style: MouthStyle) -> np.ndarray:
    """Lip flesh along the inner-lip lines: MediaPipe's inner contour lies a little inside
    the lips (it reads about 2 * LIP_BAND even on pressed lips), so the lips keep their
    thickness, meet in a dark seam when the gap is that small, and the mouth shows air only
    beyond it. The band is the lip's own texture mirrored across the contour, darker
    towards the inside, with a faint moist highlight on the lower lip."""
    import cv2

    e = style.eye
    band_w = LIP_BAND * e
    d_top, d_bot = v - top, bot - v
    near = np.minimum(d_top, d_bot)
    band = np.clip((band_w - near) / 1.0 + 0.5, 0, 1)
    upper = d_top < d_bot
    mv = np.where(upper, 2 * top - v - 1.5, 2 * bot - v + 1.5)          # mirrored across the contour
    mx = (mid[0] + u * ax[0] + mv * ay[0]).astype(np.float32) - roi[1][0]
    my = (mid[1] + u * ax[1] + mv * ay[1]).astype(np.float32) - roi[1][1]
    lip = cv2.remap(roi[0], mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    depth = np.clip(near / max(band_w, 1.0), 0, 1)                     # 0 at the contour, 1 at the band's edge
    lip = lip * (1.0 - 0.18 * depth)[..., None]
    wet = np.exp(-((d_bot - 0.35 * band_w) / max(0.25 * band_w, 0.6)) ** 2) * ~upper
    lip = lip + (np.minimum(255.0, lip * 1.2) - lip) * (0.3 * wet)[..., None]
    gap = bot - top
    seam = np.exp(-((v - (top + bot) / 2) / (0.006 * e + 0.6)) ** 2) * np.clip(1 - (gap - 2 * band_w) / max(band_w, 1.0), 0, 1)
    lip = lip * (1 - 0.5 * seam)[..., None] + style.cavity * (0.5 * seam)[..., None]
    return img * (1 - band[..., None]) + lip * band[..., None]


def paint_mouth(frame: np.ndarray, upper: np.ndarray, lower: np.ndarray, style: MouthStyle,
                skull: np.ndarray | None = None, tongue: float = 0.0) -> None:
    """Paint the interior into `frame` (H, W, 3 uint8, in place) between the inner-lip chains.

    upper, lower: (11, 2) inner-lip points (INNER_UPPER / INNER_LOWER order) in frame pixels.
    skull: (11, 2) where the photo's inner upper lip is with the head pose only (no
    expression): the upper teeth hang from it. None: from the upper lip itself.
    tongue: Motion.tongue for this frame (0: no tongue drawn beyond the interior's own).
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
    top, bot = _chain(u, upper, mid, ax, ay), _chain(u, lower, mid, ax, ay)
    tline = top if skull is None else np.minimum(_chain(u, skull, mid, ax, ay), bot - 1.0)
    if style.bank is not None:       # the presenter's own interior for this mouth shape
        img = _bank_interior(u, v, top, bot, half, upper, lower, style)
    else:
        img = _drawn_interior(u, v, top, bot, tline, half, style, upper_teeth=style.photo is None)
    if style.photo is not None and style.bank is None:
        real, wgt = _photo_interior(u, v, top, bot, tline, half, style)
        img = img * (1 - wgt) + real * wgt
    if tongue > 0:
        img = _tongue(img, u, v, top, bot, half, style, tongue)
    # the lips around the hole (a margin that the mirrored band may sample), before painting
    m = int(np.ceil(2 * LIP_BAND * e)) + 3
    rx0, ry0, rx1, ry1 = max(x0 - m, 0), max(y0 - m, 0), min(x1 + m, w), min(y1 + m, h)
    img = _lip_band(img, (frame[ry0:ry1, rx0:rx1], (rx0, ry0)), u, v, top, bot, mid, ax, ay, style)
    soft = np.sqrt(max(style.blur ** 2 - PAINT_BLUR ** 2, 0.0))     # as soft as the photo
    img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), max(0.4, 0.004 * e, soft))
    if style.grain > 0.3:        # the photo's grain, as a fixed per-pixel pattern (no flicker)
        h_ = (xs.astype(np.int64) * 73856093) ^ (ys.astype(np.int64) * 19349663)
        noise = (h_ % 2003).astype(np.float32) / 2003.0 - 0.5
        img = img + (noise * (3.46 * min(0.5 * style.grain, 2.5)))[..., None]
    roi = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = np.clip(roi * (1 - alpha) + img * alpha, 0, 255).astype(np.uint8)
