"""A presenter's own mouth interiors, learned from a short recording (`avatar face learn`).

    from avatar.face.appearance import learn, load_appearance
    learn("me.mp4", "me.face")                 # real interiors (teeth, tongue) by mouth shape
    bank = load_appearance("me.face")          # -> MouthBank, for WarpRenderer(appearance=...)

Every frame whose lips are apart gives one interior: the pixels between MediaPipe's inner
lip chains, resampled into a canonical patch (columns: corner to corner; rows: from the
upper inner lip to the lower one), keyed by the mouth's shape (inner-lip gap and inner
corner distance, both over the outer-eye distance). One interior is kept per cell of a
shape grid (the frame nearest the cell's centre). The renderer blends the interiors
near the drawn mouth's shape (Gaussian weights of the shape distance, so they never
pop from frame to frame), colour-matched to the photo's lips, instead of painting one.

The file is a compressed NumPy archive (.npz content, any suffix).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avatar.errors import AvatarError

PATCH = (32, 64)            # rows, columns of a canonical interior
MIN_OPEN = 0.04             # lips at least this far apart (eye distances) to give an interior
CELL = (0.02, 0.03)         # shape-grid cell: opening, width (eye distances)
SCALE = (0.03, 0.05)        # shape distance units when matching (opening, width)
VERSION = 1


def _frame_axes(upper: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    c0, c1 = upper[0], upper[-1]
    ax = (c1 - c0) / max(np.linalg.norm(c1 - c0), 1e-6)
    return (c0 + c1) / 2, ax, np.array([-ax[1], ax[0]]), max(np.linalg.norm(c1 - c0) / 2, 1.0)


def mouth_shape(upper: np.ndarray, lower: np.ndarray, eye: float) -> tuple[float, float]:
    """(opening, width) of inner-lip chains (INNER_UPPER / INNER_LOWER order), in eye distances."""
    return (float(np.linalg.norm(upper[5] - lower[5]) / eye), float(np.linalg.norm(upper[-1] - upper[0]) / eye))


def canonical_interior(image: np.ndarray, upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """The interior between the inner-lip chains resampled to a PATCH-sized uint8 patch."""
    import cv2

    from avatar.renderers.mouth import _chain

    mid, ax, ay, half = _frame_axes(upper)
    rows, cols = PATCH
    u = np.linspace(-1, 1, cols) * half
    top, bot = _chain(u, upper, mid, ax, ay), _chain(u, lower, mid, ax, ay)
    d = np.linspace(0, 1, rows)[:, None]
    v = top[None] + d * (bot - top)[None]
    uu = np.broadcast_to(u[None], v.shape)
    mx = (mid[0] + uu * ax[0] + v * ay[0]).astype(np.float32)
    my = (mid[1] + uu * ax[1] + v * ay[1]).astype(np.float32)
    return cv2.remap(np.ascontiguousarray(image), mx, my, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


@dataclass
class MouthBank:
    """Real mouth interiors keyed by shape; `lip` is the recording's median lip colour."""

    patches: np.ndarray     # (N, rows, cols, 3) uint8
    keys: np.ndarray        # (N, 2) opening, width in eye distances
    lip: np.ndarray         # (3,) float RGB

    def blend(self, opening: float, width: float) -> np.ndarray:
        """(rows, cols, 3) float32: the interiors near this shape, weighted by a Gaussian of
        their shape distance (continuous in the shape: no pop when the nearest one changes)."""
        d = np.hypot((self.keys[:, 0] - opening) / SCALE[0], (self.keys[:, 1] - width) / SCALE[1])
        w = np.exp(-0.5 * (d - d.min()) ** 2)          # relative to the nearest: never all zero
        w /= w.sum()
        keep = w > 1e-3
        return np.einsum("n,nhwc->hwc", (w[keep] / w[keep].sum()).astype(np.float32),
                         self.patches[keep].astype(np.float32))

    def save(self, path: str | Path) -> Path:
        from avatar.files import atomic_path

        path = Path(path)
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez_compressed(tmp, version=VERSION, patches=self.patches, keys=self.keys, lip=self.lip)
        return path


def load_appearance(path: str | Path) -> MouthBank:
    path = Path(path)
    if not path.is_file():
        raise AvatarError("appearance file not found", path=path, hint="make one with `avatar face learn`")
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["version"]) != VERSION:
                raise AvatarError(f"appearance file version {int(z['version'])}, expected {VERSION}", path=path,
                                  hint="learn it again with `avatar face learn`")
            bank = MouthBank(z["patches"], z["keys"].astype(np.float64), z["lip"].astype(np.float64))
    except (OSError, ValueError, KeyError) as e:
        raise AvatarError(f"not an appearance file ({type(e).__name__})", path=path,
                          hint="make one with `avatar face learn`") from None
    if bank.patches.ndim != 4 or bank.patches.shape[1:] != (*PATCH, 3) or len(bank.keys) != len(bank.patches) \
            or not len(bank.patches):
        raise AvatarError("appearance file has no usable interiors", path=path,
                          hint="learn it again from a clip where the mouth opens")
    return bank


def bank_from_frames(pairs) -> MouthBank:
    """A MouthBank from (RGB frame, its (478, 3) mesh or None = no face: skipped) pairs, read lazily."""
    from avatar.renderers.mouth import INNER_LOWER, INNER_UPPER, OUTER_LOWER, OUTER_UPPER, _poly_mask
    from avatar.types import eye_distance

    best: dict[tuple[int, int], tuple[float, np.ndarray, tuple[float, float]]] = {}
    lips = []
    for frame, m in pairs:
        if m is None:
            continue
        e = float(eye_distance(m))
        up, lo = m[list(INNER_UPPER), :2].astype(np.float64), m[list(INNER_LOWER), :2].astype(np.float64)
        if len(lips) < 50:
            outer = np.concatenate([m[list(OUTER_UPPER), :2], m[list(OUTER_LOWER[::-1]), :2]])
            inner = np.concatenate([up, lo[::-1]])
            sel = _poly_mask(frame.shape[:2], outer) & ~_poly_mask(frame.shape[:2], inner)
            if sel.sum() > 10:
                lips.append(np.median(frame[sel], 0))
        shape = mouth_shape(up, lo, e)
        if shape[0] < MIN_OPEN:
            continue
        cell = (int(shape[0] // CELL[0]), int(shape[1] // CELL[1]))
        centre = ((cell[0] + 0.5) * CELL[0], (cell[1] + 0.5) * CELL[1])
        dist = float(np.hypot((shape[0] - centre[0]) / CELL[0], (shape[1] - centre[1]) / CELL[1]))
        if cell not in best or dist < best[cell][0]:
            best[cell] = (dist, canonical_interior(frame, up, lo), shape)
    if not best:
        raise ValueError("no frame with the lips apart")
    items = [best[k] for k in sorted(best)]
    return MouthBank(np.stack([it[1] for it in items]), np.array([it[2] for it in items], np.float64),
                     np.median(np.array(lips), 0).astype(np.float64) if lips else np.array([150.0, 80, 80]))


def learn(video: str | Path, out: str | Path, *, start: int = 0, frames: int | None = None) -> tuple[Path, int]:
    """Learn `video`'s mouth interiors (frames [start, start + frames)) into `out`; returns (path, count)."""
    from itertools import islice

    from avatar.face.measure import mesh_frames
    from avatar.lips.evaluate import video_fps, video_frames

    path = Path(video)
    if not path.is_file():
        raise AvatarError("video not found", path=path, field="--video", hint="check the recording's path")
    video_fps(path)                                      # a clear error when it is not a video
    kept: list[np.ndarray] = []

    def tee(it):
        for f in it:
            kept.append(f)
            yield f

    stop = None if frames is None else start + frames

    def pairs():                                         # one frame in memory at a time
        for m in mesh_frames(tee(islice(video_frames(path), start, stop))):
            yield kept.pop(), m

    try:
        bank = bank_from_frames(pairs())
    except ValueError:
        raise AvatarError("no frame shows the mouth open", path=path,
                          hint="record 20-60 s of natural speech, face to the camera") from None
    return bank.save(out), len(bank.patches)
