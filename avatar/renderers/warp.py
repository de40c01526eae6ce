"""CPU warp renderer: piecewise-affine warp of the photo's face mesh to per-frame landmarks.

Per identity (once): a triangulation of the 468 mesh points plus a static ring of
anchors around the face and the face box border; linear displacement bases for mouth
opening/closing, width, blink and brows; the mouth-interior colours.
Per frame: target landmarks = rest + bases x Motion row, rotated in 3D by the head pose;
one backward map (coarse piecewise-affine map, upsampled, exact around the mouth and
eyes), one cv2.remap over the moving region, the mouth interior painted inside the
inner lips, and the region pasted back (or the face box returned with crop=True).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from avatar.face.measure import mouth_open
from avatar.face.reenact import PLACEMENT
from avatar.renderers.mouth import (INNER_LOWER, INNER_UPPER, OUTER_LOWER, OUTER_UPPER, MouthStyle,
                                 mouth_style, paint_mouth)
from avatar.types import Identity, Motion, eye_distance

N_MESH = 468                  # mesh points used for warping (the 10 iris points follow, unwarped)
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378,
             400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21,
             54, 103, 67, 109)
RIGHT_EYE_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)   # image-left eye
RIGHT_EYE_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
LEFT_EYE_UPPER = (263, 466, 388, 387, 386, 385, 384, 398, 362)
LEFT_EYE_LOWER = (263, 249, 390, 373, 374, 380, 381, 382, 362)
BROWS = (46, 53, 52, 65, 55, 70, 63, 105, 66, 107, 276, 283, 282, 295, 285, 300, 293, 334, 296, 336)
IRIS_RIGHT, IRIS_LEFT = range(468, 473), range(473, 478)

ANCHOR_RING = 1.45            # static anchor ring, times the face-oval radius from the face centre
JAW_DROP = 0.38               # chin drop per unit of inner-lip opening (real speakers, MediaPipe: 0.38)
JAW_PIVOT = (132, 361)        # mesh points at the jaw's hinge depth (in front of the ears): they stay put
WIDTH_LIFT = 0.13             # mouth rise per unit of `width` (spreading lifts it, rounding drops it)
WIDTH_THIN = 0.11             # lower-lip thinning per unit of `width`, in eye distances
UPPER_LIP_SHARE = 0.24        # part of an opening taken by the upper lip (the rest by the lower; real: 0.24)
# the same at the upper lip's outer edge: real upper lips stretch thinner as they open (the
# outer upper lip, target - real, sat 9% (bench six: 8%) of the eye distance too high per
# unit opening on 17 train clips outside bench_reenact's six); 0.10 fitted on 15 of those:
# mouth SSIM median 0.5833 -> 0.5911, 9/15 clips better
UPPER_OUTER_SHARE = 0.10
BLINK_MEET = 0.85             # where the lids meet, from the upper (0) to the lower (1) lid
BROW_LIFT = 0.09              # eyebrow raise at brow=1, in eye distances
DEPTH_DETAIL = 0.3            # share of the mesh's fine depth relief used by head rotation
MAX_SHIFT = 0.4              # largest head translation, in eye distances (the anchor ring stays put)
SMALL_TRIANGLE = 12            # samples in a bounding box below which _raster tests triangles in bulk
MAX_ZOOM = 0.15               # largest change of head size (the speaker leaning in or back), as a share
COARSE = 4                    # smallest coarse map grid step in px (exact patches around mouth and eyes)
COARSE_PER_EYE = 30           # coarse steps per eye distance on large faces (step up to 3 * COARSE)


def _smoothstep(x: np.ndarray, a: float, b: float) -> np.ndarray:
    t = np.clip((x - a) / (b - a), 0, 1)
    return t * t * (3 - 2 * t)


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, -np.sin(y)], [0, 1, 0], [np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), np.sin(p)], [0, -np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), np.sin(r), 0], [-np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


@dataclass
class FaceRig:
    """Everything precomputed for one identity at one working resolution."""

    image: np.ndarray        # working image (face box crop, possibly resized; or the box at 1:1)
    lm: np.ndarray           # (478, 3) landmarks in working pixels
    points: np.ndarray       # (M, 2) source vertices: 468 mesh points then static anchors
    tris: np.ndarray         # (K, 3) triangles over `points`, mouth-hole ones first
    tri_area: np.ndarray     # (K,) source triangle areas in px^2
    open_basis: np.ndarray   # (468, 2) px per px of extra inner-lip gap
    close_basis: np.ndarray  # (468, 2) px that close the photo's own lip gap fully
    width_basis: np.ndarray  # (468, 2) px per unit of `width`
    blink_basis: np.ndarray  # (468, 2) px at blink=1
    brow_basis: np.ndarray   # (468, 2) px at brow=1
    pivot: np.ndarray        # (3,) head rotation centre
    depth: np.ndarray        # (478,) smoothed mesh depth used for head rotation (no fold-overs)
    rest_open: float
    eye: float               # outer-eye distance in working px
    active: tuple[int, int, int, int]   # x0, y0, x1, y1 region that can change
    step: int                # coarse map grid step in px
    style: MouthStyle

    @classmethod
    def build(cls, image: np.ndarray, lm: np.ndarray) -> "FaceRig":
        from scipy.spatial import Delaunay

        lm = lm.astype(np.float64)
        h, w = image.shape[:2]
        eye = float(eye_distance(lm))
        pts = lm[:N_MESH, :2]
        oval = lm[list(FACE_OVAL), :2]
        centre = oval.mean(0)
        ring = centre + ANCHOR_RING * (oval - centre)
        ring = np.clip(ring, 1, [w - 2, h - 2])
        k = 6
        border = np.concatenate([
            np.stack([np.linspace(0, w - 1, k), np.zeros(k)], 1), np.stack([np.linspace(0, w - 1, k), np.full(k, h - 1)], 1),
            np.stack([np.zeros(k), np.linspace(0, h - 1, k)], 1)[1:-1], np.stack([np.full(k, w - 1), np.linspace(0, h - 1, k)], 1)[1:-1]])
        anchors = []
        for p in np.concatenate([ring, border]):
            if all(np.hypot(*(p - q)) > 3 for q in anchors) and np.min(np.hypot(*(pts - p).T)) > 3:
                anchors.append(p)
        points = np.concatenate([pts, np.array(anchors)])

        rest_open = float(mouth_open(lm))
        bases = _bases(lm, eye, rest_open)
        # triangulate with the mouth opened, so that the lips keep their own triangles
        opened = points.copy()
        opened[:N_MESH] += bases["open"] * 0.25 * eye
        tris = Delaunay(opened).simplices.astype(np.int32)
        inner = set(INNER_UPPER) | set(INNER_LOWER)
        hole = np.array([all(int(i) in inner for i in t) for t in tris])
        tris = np.concatenate([tris[hole], tris[~hole]])

        step = int(np.clip(round(eye / COARSE_PER_EYE), COARSE, 3 * COARSE))
        ax0, ay0 = np.floor(ring.min(0) - 2 * step).astype(int)
        ax1, ay1 = np.ceil(ring.max(0) + 2 * step).astype(int)
        active = (max(ax0, 0), max(ay0, 0), min(ax1, w), min(ay1, h))
        pivot = np.array([centre[0], lm[152, 1], lm[list(FACE_OVAL), 2].mean() + 0.5 * eye])
        # depth as a smooth (quadratic) surface plus a damped residual: the nose keeps some
        # parallax, but neighbours at very different depths (a turned cheek) cannot cross
        x, y = (lm[:, 0] - centre[0]) / eye, (lm[:, 1] - centre[1]) / eye
        basis = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], 1)
        coef = np.linalg.lstsq(basis, lm[:, 2], rcond=None)[0]
        smooth = basis @ coef
        depth = smooth + DEPTH_DETAIL * (lm[:, 2] - smooth)
        return cls(image=np.ascontiguousarray(image), lm=lm, points=points, tris=tris, tri_area=_tri_area(points[tris]),
                   open_basis=bases["open"], close_basis=bases["close"], width_basis=bases["width"],
                   blink_basis=bases["blink"], brow_basis=bases["brow"], pivot=pivot,
                   rest_open=rest_open, eye=eye, depth=depth, active=active, step=step, style=mouth_style(image, lm, rest_open))

    @functools.cached_property
    def _source_triangles(self) -> np.ndarray:
        """(K, 3, 2) the triangles on the photo (the same every frame)."""
        return self.points[self.tris]

    # ------------------------------------------------------------------ per frame
    def target(self, mouth: np.ndarray, head: np.ndarray, blink: float, brow: float,
               shift: np.ndarray | None = None, zoom: float | None = None) -> np.ndarray:
        """(478, 3) target landmarks in working pixels for one Motion row; `zoom` scales the
        head about its upper face's centre after the rotation, then `shift` (2,) moves it by
        that many working pixels (the anchors stay). Both come from real footage
        (avatar.face.reenact); Motion itself has neither."""
        o, wd = float(mouth[0]), float(mouth[1])
        d = wd * self.width_basis + float(blink) * self.blink_basis + float(brow) * self.brow_basis
        if self.rest_open > 0 and o < self.rest_open:
            d = d + (1.0 - o / self.rest_open) * self.close_basis
        else:
            d = d + (o - self.rest_open) * self.eye * self.open_basis
        lm = self.lm.copy()
        lm[:N_MESH, :2] += d
        # irises follow the lids' mean motion (they are hidden by the blink anyway)
        for iris, lids in ((IRIS_RIGHT, RIGHT_EYE_UPPER + RIGHT_EYE_LOWER), (IRIS_LEFT, LEFT_EYE_UPPER + LEFT_EYE_LOWER)):
            lm[list(iris), :2] += d[list(lids)].mean(0)
        if np.any(head != 0):
            r = _rotation(*map(float, head))
            q = lm.copy()
            q[:, 2] = self.depth
            lm[:, :2] += ((q - self.pivot) @ r.T + self.pivot - q)[:, :2]
        if zoom is not None and zoom != 1.0:
            c = lm[list(PLACEMENT), :2].mean(0)
            lm[:, :2] = c + (lm[:, :2] - c) * float(np.clip(zoom, 1 - MAX_ZOOM, 1 + MAX_ZOOM))
        if shift is not None:
            lm[:, :2] += np.clip(shift, -MAX_SHIFT * self.eye, MAX_SHIFT * self.eye)
        return lm

    def backward_map(self, tgt: np.ndarray, patches: list[tuple[int, int, int, int]]) -> np.ndarray:
        """(h, w, 2) float32 source coordinates for every pixel of the active region."""
        import cv2

        ax0, ay0, ax1, ay1 = self.active
        g = self.step
        dst = self.points.copy()
        dst[:N_MESH] = tgt[:N_MESH, :2]
        tri_pts = dst[self.tris]                                     # (K, 3, 2) target triangles
        A = _affines(self._source_triangles, tri_pts)               # (K+1, 2, 3), last = identity
        area = _tri_area(tri_pts) * np.sign(self.tri_area)          # < 0: folded over
        keep = area > np.maximum(0.05, 0.12 * np.abs(self.tri_area))
        lo, hi = _corners_min(tri_pts), _corners_max(tri_pts)
        # coarse samples: one extra sample around the region so upsampling never clamps inside it
        ox, oy = ax0 - g, ay0 - g
        gw, gh = -(-(ax1 - ax0) // g) + 2, -(-(ay1 - ay0) // g) + 2
        ids = _raster(tri_pts, (gh, gw), offset=(ox, oy), step=g, keep=keep)
        gy, gx = np.mgrid[0:gh, 0:gw].astype(np.float32)
        sx, sy = ox + (gx + 0.5) * g - 0.5, oy + (gy + 0.5) * g - 0.5
        coarse = _apply(A, ids, sx, sy)
        full = cv2.resize(coarse, (gw * g, gh * g), interpolation=cv2.INTER_LINEAR)
        m = full[g:g + ay1 - ay0, g:g + ax1 - ax0]
        for px0, py0, px1, py1 in patches:
            px0, py0 = max(px0, ax0), max(py0, ay0)
            px1, py1 = min(px1, ax1), min(py1, ay1)
            if px1 <= px0 or py1 <= py0:
                continue
            sel = np.nonzero((hi[:, 0] >= px0) & (lo[:, 0] <= px1) & (hi[:, 1] >= py0) & (lo[:, 1] <= py1))[0]
            pids = _raster(tri_pts[sel], (py1 - py0, px1 - px0), offset=(px0, py0), step=1, keep=keep[sel])
            pids = np.where(pids >= 0, sel[np.maximum(pids, 0)], -1)
            yy, xx = np.mgrid[py0:py1, px0:px1].astype(np.float32)
            sub = m[py0 - ay0:py1 - ay0, px0 - ax0:px1 - ax0]
            sub[pids >= 0] = _apply(A, pids, xx, yy)[pids >= 0]
        return m

    def skull_line(self, head: np.ndarray, shift: np.ndarray | None = None, zoom: float | None = None) -> np.ndarray:
        """(11, 2) the photo's inner upper lip moved by the head pose only: the upper teeth's line."""
        rest = self.target(np.array([self.rest_open, 0.0]), head, 0.0, 0.0, shift, zoom)
        return rest[list(INNER_UPPER), :2]

    def render(self, tgt: np.ndarray, blink: float, skull: np.ndarray | None = None,
               tongue: float = 0.0) -> np.ndarray:
        """The working image warped to `tgt` (a new array); skull: see skull_line; tongue:
        Motion.tongue (avatar.renderers.mouth.paint_mouth)."""
        import cv2

        e = self.eye
        patches = [_box(tgt[list(OUTER_UPPER + OUTER_LOWER), :2], 0.12 * e)]
        if blink > 0.02:
            patches += [_box(tgt[list(RIGHT_EYE_UPPER + RIGHT_EYE_LOWER), :2], 0.1 * e),
                        _box(tgt[list(LEFT_EYE_UPPER + LEFT_EYE_LOWER), :2], 0.1 * e)]
        ax0, ay0, ax1, ay1 = self.active
        m = self.backward_map(tgt, patches)
        out = self.image.copy()
        out[ay0:ay1, ax0:ax1] = cv2.remap(self.image, m, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        paint_mouth(out, tgt[list(INNER_UPPER), :2], tgt[list(INNER_LOWER), :2], self.style, skull, tongue)
        return out


def _box(p: np.ndarray, margin: float) -> tuple[int, int, int, int]:
    lo, hi = p.min(0) - margin, p.max(0) + margin
    return int(np.floor(lo[0])), int(np.floor(lo[1])), int(np.ceil(hi[0])) + 1, int(np.ceil(hi[1])) + 1


def _affines(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(K+1, 2, 3) float32 affine maps taking each dst triangle onto its src triangle; [K] = identity.

    Closed form per triangle (vectorised): with edge matrices D = [d1 d2] (dst) and
    S = [s1 s2] (src), the linear part is S D^-1 and the offset src0 - S D^-1 dst0.
    Degenerate dst triangles (|det D| < 1e-6) get the identity."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    d1, d2 = dst[:, 1] - dst[:, 0], dst[:, 2] - dst[:, 0]
    s1, s2 = src[:, 1] - src[:, 0], src[:, 2] - src[:, 0]
    det = d1[:, 0] * d2[:, 1] - d2[:, 0] * d1[:, 1]
    bad = np.abs(det) < 1e-6
    inv = 1.0 / np.where(bad, 1.0, det)
    # D^-1 = [[d2y, -d2x], [-d1y, d1x]] / det; M = S D^-1 with S's columns s1, s2
    i00, i01, i10, i11 = d2[:, 1] * inv, -d2[:, 0] * inv, -d1[:, 1] * inv, d1[:, 0] * inv
    A = np.empty((len(src) + 1, 2, 3))
    A[:-1, :, 0] = s1 * i00[:, None] + s2 * i10[:, None]
    A[:-1, :, 1] = s1 * i01[:, None] + s2 * i11[:, None]
    A[:-1, :, 2] = src[:, 0] - A[:-1, :, 0] * dst[:, 0, :1] - A[:-1, :, 1] * dst[:, 0, 1:]
    A[-1] = A[:-1][bad] = [[1, 0, 0], [0, 1, 0]]
    return A.astype(np.float32)


def _corners_min(t: np.ndarray) -> np.ndarray:
    """(K, 2) the smallest x and y of (K, 3, 2) triangles: t.min(1), a quarter of its time
    (numpy's reduction over a short middle axis is slow; the result is the same)."""
    return np.minimum(np.minimum(t[:, 0], t[:, 1]), t[:, 2])


def _corners_max(t: np.ndarray) -> np.ndarray:
    """(K, 2) the largest x and y of (K, 3, 2) triangles: t.max(1)."""
    return np.maximum(np.maximum(t[:, 0], t[:, 1]), t[:, 2])


def _tri_area(t: np.ndarray) -> np.ndarray:
    """Signed areas of (K, 3, 2) triangles."""
    e1, e2 = t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]
    return 0.5 * (e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])


def _raster(tri_pts: np.ndarray, shape: tuple[int, int], offset: tuple[float, float], step: float,
            keep: np.ndarray) -> np.ndarray:
    """Triangle index per sample (-1 outside all); later triangles win on shared edges.

    Sample (i, j) sits at pixel (offset + (j + .5) * step - .5, offset + (i + .5) * step - .5)
    and belongs to a triangle that contains it (edges included). Triangles not in `keep`
    (collapsed ones: closed lids, closed lips) are skipped and the samples they would own
    take a neighbour's triangle, so a collapsed sliver never stretches what it hid (the eye,
    the teeth) into a line of specks.

    Most mesh triangles cover a few samples: those (bounding box of at most SMALL_TRIANGLE
    samples) are tested against their edges all at once; looping over ~1300 of them per
    frame cost more than the test. Larger ones are filled by OpenCV one by one.
    """
    import cv2

    h, w = shape
    idx = np.nonzero(keep)[0]
    q = (tri_pts[idx].astype(np.float64) - np.asarray(offset, float) + 0.5) / step - 0.5   # (K, 3, 2)
    lo = np.maximum(np.ceil(_corners_min(q) - 1e-9), 0).astype(np.int64)
    hi = np.minimum(np.floor(_corners_max(q) + 1e-9), [w - 1, h - 1]).astype(np.int64)
    nx, ny = hi[:, 0] - lo[:, 0] + 1, hi[:, 1] - lo[:, 1] + 1
    count = np.maximum(nx, 0) * np.maximum(ny, 0)
    big = count > SMALL_TRIANGLE
    ids = np.full((h, w), -1, np.int32)
    qi = np.round(q[big] * 16).astype(np.int32)
    for i, poly in zip(idx[big].tolist(), qi):    # large triangles: OpenCV's scanline fill
        cv2.fillConvexPoly(ids, poly, i, cv2.LINE_8, 4)
    on = ~big & (count > 0)
    idx, q, lo, nx, count = idx[on], q[on], lo[on], nx[on], count[on]
    if len(idx):
        k = np.repeat(np.arange(len(idx)), count)                         # which triangle each sample tests
        local = np.arange(len(k)) - np.repeat(np.cumsum(count) - count, count)
        row, col = np.divmod(local, nx[k])
        lok = lo[k]
        x, y = lok[:, 0] + col, lok[:, 1] + row
        qk = q[k]                                                        # one gather for the three corners
        a, b, c = qk[:, 0], qk[:, 1], qk[:, 2]
        side = np.sign((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))
        inside = np.ones(len(k), bool)
        for p0, p1 in ((a, b), (b, c), (c, a)):
            cross = (p1[:, 0] - p0[:, 0]) * (y - p0[:, 1]) - (p1[:, 1] - p0[:, 1]) * (x - p0[:, 0])
            inside &= cross * side >= -1e-9
        np.maximum.at(ids.reshape(-1), (y * w + x)[inside], idx[k[inside]].astype(np.int32))
    for _ in range(3):                      # close gaps left by skipped triangles
        hole = ids < 0
        if not hole.any():
            break
        grown = cv2.dilate(ids.astype(np.float32), np.ones((3, 3), np.uint8)).astype(np.int32)
        ids[hole] = grown[hole]
    return ids


def _apply(A: np.ndarray, ids: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    a = A[np.where(ids >= 0, ids, len(A) - 1)]                      # (..., 2, 3)
    out = np.empty(ids.shape + (2,), np.float32)
    out[..., 0] = a[..., 0, 0] * x + a[..., 0, 1] * y + a[..., 0, 2]
    out[..., 1] = a[..., 1, 0] * x + a[..., 1, 1] * y + a[..., 1, 2]
    return out


def _jaw_weight(lm: np.ndarray, v: np.ndarray, eye: float) -> np.ndarray:
    """(468,) share of the chin's drop that each mesh point takes when the jaw opens.

    The jaw turns about the hinge line in front of the ears (JAW_PIVOT's depth): a point's
    drop in a frontal view is proportional to how far in front of that line it is (the
    chin most, the jaw's angle little, the ears nothing), so mesh depth gives it. Only the
    jaw moves: the weight fades out from below the mouth corners (v > 0) to above them, so
    the upper lip, cheeks and nose stay, and the neck and background (outside the mesh,
    held by the static anchors) stay still too."""
    z = lm[:N_MESH, 2]
    zp = float(lm[list(JAW_PIVOT), 2].mean())
    reach = max(zp - float(lm[152, 2]), 0.2 * eye)          # the chin's distance in front of the hinge
    return np.clip((zp - z) / reach, 0, 1.2) * _smoothstep(v, -0.12 * eye, 0.12 * eye)


def _bases(lm: np.ndarray, eye: float, rest_open: float) -> dict[str, np.ndarray]:
    """Linear displacement fields (468, 2) in pixels for the mouth, eyes and brows."""
    import cv2

    p = lm[:N_MESH, :2]
    n = len(p)
    # --- mouth frame: u along the corners, v downwards
    c0, c1 = lm[61, :2], lm[291, :2]
    ex = (c1 - c0) / np.linalg.norm(c1 - c0)
    ey = np.array([-ex[1], ex[0]])
    mc = (c0 + c1) / 2
    half = np.linalg.norm(c1 - c0) / 2
    u, v = (p - mc) @ ex, (p - mc) @ ey
    outer = np.concatenate([lm[list(OUTER_UPPER), :2], lm[list(OUTER_LOWER[::-1]), :2]]).astype(np.float32)
    d_lip = np.array([cv2.pointPolygonTest(outer, (float(a), float(b)), True) for a, b in p])
    on_lip = d_lip >= -0.5
    iu, il = p[list(INNER_UPPER)], p[list(INNER_LOWER)]
    ui, vu = (iu - mc) @ ex, (iu - mc) @ ey
    li, vl = (il - mc) @ ex, (il - mc) @ ey
    top = np.interp(u, np.sort(ui), vu[np.argsort(ui)])
    bot = np.interp(u, np.sort(li), vl[np.argsort(li)])
    lower = on_lip & (v > (top + bot) / 2)
    lower[list(INNER_LOWER)] = True
    lower[list(INNER_UPPER)] = False
    corner = np.isin(np.arange(n), [78, 308, 61, 291])
    lower[corner] = False
    upper = on_lip & ~lower & ~corner          # the corners go with the jaw only
    prof = np.sqrt(np.clip(1 - (u / half) ** 2, 0, 1))
    gap = np.maximum(bot - top, 0.0)
    gap_c = max(float(gap[13]), 1e-6)
    jaw = JAW_DROP * _jaw_weight(lm, v, eye)
    ol = p[list(OUTER_LOWER)]
    uo, vo = (ol - mc) @ ex, (ol - mc) @ ey
    below = np.clip(v - np.interp(u, np.sort(uo), vo[np.argsort(uo)]), 0, None)
    # skin under the lower lip follows the lip, fading into the jaw (so nothing folds over)
    follow = np.where(~on_lip & (v > 0), np.exp(-(below / (0.2 * eye)) ** 2), 0.0)

    # how far into the upper lip a point is: 0 on its inner contour, 1 on its outer one
    ou = p[list(OUTER_UPPER)]
    uu, vuo = (ou - mc) @ ex, (ou - mc) @ ey
    top_out = np.interp(u, np.sort(uu), vuo[np.argsort(uu)])
    depth_up = np.clip((top - v) / np.maximum(top - top_out, 1e-6), 0, 1)
    up_share = UPPER_LIP_SHARE + (UPPER_OUTER_SHARE - UPPER_LIP_SHARE) * depth_up

    def lip_field(shape: np.ndarray, jaw_scale: float) -> np.ndarray:
        lw = (1 - UPPER_LIP_SHARE) * shape
        # the jaw carries everything below the mouth corners; the lower lip opens further on
        # its own, and the skin under it follows it, fading into the jaw (nothing folds over)
        dv = np.maximum(jaw * jaw_scale, np.where(lower, lw, lw * follow))
        dv = np.where(upper, -up_share * shape, dv)
        return dv[:, None] * ey[None, :]

    open_b = lip_field(prof, 1.0)
    close_b = np.zeros((n, 2))
    if rest_open > 0.005:
        close_b = -lip_field(gap, gap_c)
    # --- width: corners in/out; the mouth rises when it spreads (a smile) and drops when it
    # rounds, the lower lip thins as it spreads (the upper keeps its thickness), as measured
    # on real speakers (per unit width: the lips rise 0.13, the chin 0.11, the outer lower
    # lip 0.24, the nose not at all); the skin beside the corners goes half as far as they do
    du = 0.5 * eye * np.clip(u / half, -1, 1)
    dist = np.min(np.hypot(*(p[:, None, :] - outer[None].astype(np.float64)).transpose(2, 0, 1)), axis=1)
    # no step at the lip's edge; over 0.06 eye the corner's skin folded over itself (a dotted seam
    # off the corner on wide, spread mouths), over 0.12 eye it does not: mouth SSIM 0.5778 -> 0.5772
    near = 0.5 + 0.5 * np.exp(-(dist / (0.12 * eye)) ** 2)
    fall = np.where(on_lip, 1.0, near * np.exp(-(dist / (0.4 * eye)) ** 2))
    lift = WIDTH_LIFT * eye * np.where(on_lip, 1.0, np.exp(-(dist / (0.8 * eye)) ** 2)) * _smoothstep(v, -0.4 * eye, -0.1 * eye)
    outer_lower = lower & ~np.isin(np.arange(n), INNER_LOWER)
    thin = np.where(outer_lower, WIDTH_THIN * eye * prof, 0.0)
    width_b = (du * fall)[:, None] * ex[None, :] - (lift + thin)[:, None] * ey[None, :]
    # --- blink and brows work in the eye frame (x along the eye line, y down the face), so a
    # tilted head still closes its lids along the face and raises its brows up the face
    fx = (lm[263, :2] - lm[33, :2]) / np.linalg.norm(lm[263, :2] - lm[33, :2])
    fy = np.array([-fx[1], fx[0]])
    q = np.stack([p @ fx, p @ fy], axis=1)
    blink_y = np.zeros(n)
    for up_i, lo_i in ((RIGHT_EYE_UPPER, RIGHT_EYE_LOWER), (LEFT_EYE_UPPER, LEFT_EYE_LOWER)):
        up, lo = q[list(up_i)], q[list(lo_i)]
        xs_u, xs_l = np.argsort(up[:, 0]), np.argsort(lo[:, 0])
        yu = np.interp(q[:, 0], up[xs_u, 0], up[xs_u, 1])
        yl = np.interp(q[:, 0], lo[xs_l, 0], lo[xs_l, 1])
        meet = yu + BLINK_MEET * (yl - yu)
        x_in = np.clip(1 - np.maximum(up[:, 0].min() - q[:, 0], q[:, 0] - up[:, 0].max()) / (0.12 * eye), 0, 1)
        x_in = np.where((q[:, 0] >= up[:, 0].min()) & (q[:, 0] <= up[:, 0].max()), 1.0, x_in)
        above = np.clip(yu - q[:, 1], 0, None)
        below = np.clip(q[:, 1] - yl, 0, None)
        w_up = np.exp(-(above / (0.1 * eye)) ** 2) * (q[:, 1] <= yu + 0.5)
        w_lo = np.exp(-(below / (0.05 * eye)) ** 2) * (q[:, 1] >= yl - 0.5)
        dy = w_up * (meet - yu) + w_lo * (meet - yl)
        dy[list(up_i)] = (meet - yu)[list(up_i)]
        dy[list(lo_i)] = (meet - yl)[list(lo_i)]
        blink_y += dy * x_in
    blink_b = blink_y[:, None] * fy[None, :]
    bp = p[list(BROWS)]
    db = np.min(np.hypot(*(p[:, None, :] - bp[None]).transpose(2, 0, 1)), axis=1)
    eye_y = float(((lm[33, :2] + lm[263, :2]) / 2) @ fy)
    wb = np.exp(-(db / (0.18 * eye)) ** 2) * _smoothstep(eye_y - q[:, 1], -0.02 * eye, 0.15 * eye)
    brow_b = (-BROW_LIFT * eye * wb)[:, None] * fy[None, :]
    return {"open": open_b, "close": close_b, "width": width_b, "blink": blink_b, "brow": brow_b}


class WarpRenderer:
    """Default CPU renderer.

    size: side of the square frames with crop=True (None = the face box's own size);
    paste-back frames (crop=False) always have the photo's full resolution.
    appearance: a `.face` file (avatar face learn) or a loaded MouthBank: the presenter's
    own mouth interiors, used instead of drawn ones.
    """

    name = "warp"

    def __init__(self, size: int | None = None, appearance=None):
        self.size = size
        if appearance is not None and not hasattr(appearance, "blend"):
            from avatar.face.appearance import load_appearance

            appearance = load_appearance(appearance)
        self.appearance = appearance

    def rig(self, identity: Identity, *, crop: bool = False) -> tuple[FaceRig, tuple[int, int], float]:
        """The FaceRig for this identity, the work region's offset in the photo and its scale."""
        import cv2

        x0, y0, x1, y1 = identity.face_box
        region = identity.image[y0:y1, x0:x1]
        lm = identity.landmarks.astype(np.float64).copy()
        lm[:, :2] -= (x0, y0)
        scale = 1.0
        if crop and self.size and self.size != (x1 - x0):
            scale = self.size / float(x1 - x0)
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
            region = cv2.resize(region, (self.size, self.size), interpolation=interp)
            lm *= scale
        rig = FaceRig.build(region, lm)
        if self.appearance is not None:
            import dataclasses

            gain = np.clip(rig.style.lip / np.maximum(self.appearance.lip, 1.0), 0.7, 1.4)
            rig.style = dataclasses.replace(rig.style, bank=self.appearance, bank_gain=gain)
        return rig, (x0, y0), scale

    def frames_with_landmarks(self, identity: Identity, motion: Motion, *, crop: bool = False,
                              shift: np.ndarray | None = None,
                              zoom: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (frame uint8 RGB, (478, 2) float32 landmarks in that frame's pixels) per Motion row.
        shift: optional (T, 2) head translation per frame in photo pixels (self-reenactment of
        real footage; Motion itself has no translation); zoom: optional (T,) head size factor
        per frame (see FaceRig.target)."""
        rig, (x0, y0), scale = self.rig(identity, crop=crop)
        base = None if crop else identity.image
        tongue = motion.tongue if motion.tongue is not None else np.zeros(len(motion), np.float32)
        for i in range(len(motion)):
            sh = None if shift is None else np.asarray(shift[i], np.float64) * scale
            zm = None if zoom is None else float(zoom[i])
            tgt = rig.target(motion.mouth[i], motion.head[i], motion.blink[i], motion.brow[i], sh, zm)
            face = rig.render(tgt, float(motion.blink[i]), rig.skull_line(motion.head[i], sh, zm),
                              float(tongue[i]))
            lm2 = tgt[:, :2].astype(np.float32)
            if crop:
                yield face, lm2
            else:
                frame = base.copy()
                frame[y0:y0 + face.shape[0], x0:x0 + face.shape[1]] = face
                yield frame, lm2 + np.float32([x0, y0])

    def frames(self, identity: Identity, motion: Motion, *, crop: bool = False) -> Iterator[np.ndarray]:
        for frame, _ in self.frames_with_landmarks(identity, motion, crop=crop):
            yield frame
