"""How well the face-alignment detector's 68 -> 478 mapping reproduces MediaPipe's mesh.

    python bench/bench_face_alignment.py [--eval ../shared/eval] [--frames 50]

For each real face (the eval photos, and frames of the eval talking-head video): MediaPipe's
478-point mesh is the reference; its 68 dlib-equivalent points go through
avatar.face.fa_detector.mesh_from_68 and the result is compared with the reference.
Errors are in units of the outer-eye-corner distance (0.01 = 1 % of it), over all 478
points, over the lips only, and the mouth-opening error (avatar.face.measure.mouth_open).
This isolates the mapping; the 68 points of face_alignment's own network add their own
error on top (its weights are not downloaded here; see docs/gpu.md).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from avatar.face import detect_faces, fa_detector as fd, read_photo  # noqa: E402
from avatar.face.measure import mouth_open  # noqa: E402
from avatar.renderers.mouth import INNER_LOWER, INNER_UPPER, OUTER_LOWER, OUTER_UPPER  # noqa: E402

LIPS = sorted(set(INNER_UPPER + INNER_LOWER + OUTER_UPPER + OUTER_LOWER))   # MediaPipe's lip landmarks


def score(real: np.ndarray) -> tuple[float, float, float, float]:
    est = fd.mesh_from_68(real[fd.MP_OF_68])
    eye = np.hypot(*(real[33, :2] - real[263, :2]))
    e = np.linalg.norm(real[:, :2] - est[:, :2], axis=1) / eye
    return float(e.mean()), float(e.max()), float(e[LIPS].mean()), float(abs(mouth_open(est) - mouth_open(real)))


def video_frames(path: Path, every: int, limit: int):
    import av

    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i % every == 0:
                yield i, f.to_ndarray(format="rgb24")
            if i >= limit * every:
                break


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    ap.add_argument("--frames", type=int, default=50, help="video frames to score (every 4th)")
    args = ap.parse_args()
    if not args.eval.is_dir():
        print(f"eval folder {args.eval} is missing: only the bundled astronaut is scored")
    rows: list[tuple[str, tuple]] = []
    from avatar.resources import default_photo

    photos = [default_photo()] + (sorted(args.eval.glob("*.png")) if args.eval.is_dir() else [])
    for p in photos:
        faces = detect_faces(read_photo(p))
        if faces:
            rows.append((p.name, score(faces[0].astype(np.float64))))
    vids = sorted(args.eval.glob("*.mp4")) if args.eval.is_dir() else []
    for v in vids:
        vs = [score(f[0].astype(np.float64)) for _, img in video_frames(v, 4, args.frames) if (f := detect_faces(img))]
        if vs:
            rows.append((f"{v.name} ({len(vs)} frames, mean)", tuple(np.mean(vs, axis=0))))
            rows.append((f"{v.name} (worst frame)", tuple(np.max(vs, axis=0))))
    print(f"{'face':48} {'mean err':>8} {'max err':>8} {'lips err':>8} {'|d open|':>8}   (eye-distance units)")
    for name, (m, mx, lips, dopen) in rows:
        print(f"{name:48} {m:8.4f} {mx:8.4f} {lips:8.4f} {dopen:8.4f}")


if __name__ == "__main__":
    main()
