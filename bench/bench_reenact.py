"""Self-reenactment of real clips: how close the warp renderer's frames come to the real ones.

    python bench/bench_reenact.py [--clips A.mp4,B.mp4] [--max-frames 200] [--step 2] [--strips DIR]

Protocol (as in the face-animation papers): the clip's first frame is the photo, every
frame's motion is measured on the clip with MediaPipe (avatar.face.reenact), the
renderer draws frame i from frame i's motion, and frame i is compared with the real frame i:
- SSIM (scikit-image, RGB) and PSNR in the mouth box (the real frame's lip landmarks,
  box grown by 30%) and in the face box (the real frame's mesh bounding box);
- lip-landmark error: MediaPipe re-run on the rendered frames, mean distance of the 40
  lip points to the real frame's, in % of the real outer-eye-corner distance.
`mSSIMc`: SSIM of the same-size box centred on each picture's own lips (the rendered
frame's re-measured ones, the static frame's own), i.e. the mouth's look without its position.
`change`: mean frame-to-frame change in the mouth box, over the real clip's (1 = as
much as the real mouth moves; well above 1 would be flicker; the static baseline is 0).
The static baseline (the first frame repeated) is scored the same way. Per clip and
median over clips; `1-SSIM` is the gap to the real frames.

Clips: the ones in ../shared/train (or --root) with a face at least ~240 px high and a
constant frame rate: the three HDTF crops (512 px), the German news anchor (512 px),
two video-retalking clips (844 and 700 px). Left out: the 224 px VoxCeleb2 crops and the
small VidTIMIT face (low resolution), video-retalking 1 (variable frame rate), the
LivePortrait driving clips (exaggerated expressions; d20 is old low-quality footage)
and the two 1080p clips (slow here; pass them with --clips). Audio plays no part.
Runtime: the first --max-frames frames of each clip (default 200, 8 s at 25 fps); every
--step-th frame is scored (default 2, frame 0 excluded: it is the photo).
--learn: the issue's test of `avatar face learn`: interiors learned from the first half
of each clip (frames 0..n/2), the second half reenacted from its own first frame with them
("learned") and without ("ours"); only ~4 s to learn from here (20-60 s is the intended use).
--ceilings: upper bounds for this renderer, scored on the same frames (mouth and face SSIM/PSNR):
  ours+in    ours, with the real interior (what the real inner lips enclose) warped into our
             own inner lips: a perfect interior, our geometry;
  placed     ours, moved so that its lips' centroid is the real one's (placement alone);
  mesh       the warp driven by the real frame's own full MediaPipe mesh instead of the
             motion channels (perfect geometry, at the mesh's resolution);
  mesh+in    that, with the real pixels pasted inside the real inner lips (the interior too).
  A goal above `mesh` cannot be reached by any Motion-driven warp of the photo.
Strips: for each clip, PNGs of 5 frames (rows: real / rendered / static) of the face
box and of the mouth box, written to --strips.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from itertools import islice
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_CLIPS = ("OpenTalker_SadTalker__RD_Radio2_000.mp4", "OpenTalker_SadTalker__RD_Radio34_000.mp4",
                 "OpenTalker_SadTalker__WDA_BobMenendez_000.mp4", "yerfor_MimicTalk__German_20s.mp4",
                 "OpenTalker_video-retalking__2.mp4", "OpenTalker_video-retalking__4.mp4")
LIPS = sorted(set((61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 146, 91, 181, 84, 17, 314, 405, 321, 375,
                   78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 95, 88, 178, 87, 14, 317, 402, 318, 324)))
MOUTH_GROW = 0.30
STRIP_FRAMES = 5


def box(points: np.ndarray, grow: float, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Bounding box of (N, 2) points grown by `grow` of its size (half on each side), inside the image."""
    lo, hi = points.min(0), points.max(0)
    pad = (hi - lo) * grow / 2
    x0, y0 = np.floor(lo - pad).astype(int)
    x1, y1 = np.ceil(hi + pad).astype(int) + 1
    return max(x0, 0), max(y0, 0), min(x1, shape[1]), min(y1, shape[0])


def scores(real: np.ndarray, other: np.ndarray, b: tuple[int, int, int, int]) -> tuple[float, float]:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    x0, y0, x1, y1 = b
    a, o = real[y0:y1, x0:x1], other[y0:y1, x0:x1]
    ssim = structural_similarity(a, o, channel_axis=2, data_range=255)
    psnr = peak_signal_noise_ratio(a, o, data_range=255)
    return float(ssim), float(min(psnr, 99.0))


def centred_ssim(real, real_mesh, img, mesh, b) -> float:
    """SSIM of box `b` of `real` against the same-size box of `img` moved onto img's own lips."""
    if mesh is None:
        return float("nan")
    d = np.round(mesh[LIPS, :2].mean(0) - real_mesh[LIPS, :2].mean(0)).astype(int)
    x0, y0, x1, y1 = b
    h, w = img.shape[:2]
    if x0 + d[0] < 0 or y0 + d[1] < 0 or x1 + d[0] > w or y1 + d[1] > h:
        return float("nan")
    return scores(real[y0:y1, x0:x1], img[y0 + d[1]:y1 + d[1], x0 + d[0]:x1 + d[0]], (0, 0, x1 - x0, y1 - y0))[0]


def lip_error(real_mesh: np.ndarray, mesh: np.ndarray | None) -> float:
    from avatar.types import eye_distance

    if mesh is None:
        return float("nan")
    d = np.linalg.norm(real_mesh[LIPS, :2] - mesh[LIPS, :2], axis=1).mean()
    return float(100 * d / eye_distance(real_mesh))


def _rendered_with_meshes(r):
    """(rendered frame, its re-measured mesh or None) per frame of Reenactment r, lazily."""
    from avatar.face.measure import mesh_frames

    stash: list[np.ndarray] = []

    def rendered():
        for f in r.frames():
            stash.append(f)
            yield f

    for mesh in mesh_frames(rendered()):
        yield stash.pop(), mesh


CEILINGS = ("ours+in", "placed", "mesh", "mesh+in")


def ceiling_frames(r, rig, off, i: int, real: np.ndarray, m: np.ndarray, ours: np.ndarray) -> dict[str, np.ndarray]:
    """The --ceilings renders of frame i (see the module's docstring); `ours`: the frame rendered from its motion."""
    import cv2

    from avatar.renderers.warp import INNER_LOWER, INNER_UPPER

    mo = r.motion
    sh, zm = r.shift[i], float(r.zoom[i]) if r.zoom is not None else None
    tgt = rig.target(mo.mouth[i], mo.head[i], mo.blink[i], mo.brow[i], sh, zm)
    skull = rig.skull_line(mo.head[i], sh, zm)
    placed = tgt.copy()
    placed[:, :2] += (m[LIPS, :2] - off).mean(0) - tgt[LIPS, :2].mean(0)
    mesh = tgt.copy()
    mesh[:, :2] = m[:, :2] - off
    out = {}
    for name, t in (("placed", placed), ("mesh", mesh)):
        face = rig.render(t, float(mo.blink[i]), skull, 0.0)
        frame = r.identity.image.copy()
        frame[off[1]:off[1] + face.shape[0], off[0]:off[0] + face.shape[1]] = face
        out[name] = frame

    def inner(lips: np.ndarray) -> np.ndarray:   # the inner-lip contour, (20, 2), in one order
        return np.concatenate([lips[list(INNER_UPPER), :2], lips[list(INNER_LOWER[::-1]), :2]]).astype(np.float32)

    def interior(dst: np.ndarray, img: np.ndarray) -> np.ndarray:
        """img with the real frame's interior warped from the real inner lips onto contour `dst`
        (a fan of triangles from the centroid, one affine each)."""
        src, dst = inner(m), inner(dst)
        out = img.copy()
        cs, cd = src.mean(0), dst.mean(0)
        for k in range(len(src)):
            a, b = (src[k], src[(k + 1) % len(src)], cs), (dst[k], dst[(k + 1) % len(dst)], cd)
            mask = np.zeros(real.shape[:2], np.uint8)
            cv2.fillConvexPoly(mask, np.round(np.array(b)).astype(np.int32), 1)
            if not mask.any():
                continue
            warped = cv2.warpAffine(real, cv2.getAffineTransform(np.float32(a), np.float32(b)), real.shape[1::-1],
                                    flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            out[mask > 0] = warped[mask > 0]
        return out

    out["ours+in"] = interior(tgt[:, :2] + off, ours)
    out["mesh+in"] = interior(m, out["mesh"])
    return {name: out[name] for name in CEILINGS}


def run_clip(path: Path, max_frames: int, step: int, strips: Path | None, learn: bool = False,
             ceilings: bool = False) -> dict:
    """Score one clip. learn=True: learn the mouth interiors from the first half of the
    frames, reenact the second half (its first frame is the photo) with and without them."""
    import dataclasses

    from avatar.face.appearance import bank_from_frames
    from avatar.face.measure import mesh_frames, mouth_open
    from avatar.face.reenact import prepare
    from avatar.lips.evaluate import video_frames

    t0 = time.perf_counter()
    start = 0
    variants = ["ours"]
    if learn:
        n = sum(1 for _ in islice(video_frames(path), max_frames))
        start = n // 2
        kept: list[np.ndarray] = []

        def tee(it):
            for f in it:
                kept.append(f)
                yield f

        bank = bank_from_frames((kept.pop(), m) for m in mesh_frames(tee(islice(video_frames(path), start))))
        variants.append("learned")
    r = prepare(path, max_frames - start, start=start)
    if ceilings:
        from avatar.renderers.warp import WarpRenderer

        rig, off, _ = WarpRenderer().rig(r.identity)
    runs = [r] + ([dataclasses.replace(r, appearance=bank)] if learn else [])
    static = r.identity.image
    rows = []
    opens = np.array([np.nan if m is None else float(mouth_open(m)) for m in r.meshes])
    cand = [i for i in range(1, len(r.meshes)) if r.meshes[i] is not None]
    picks = set()
    if cand:   # strip frames: spread over the clip's mouth openings, widest included
        order = sorted(cand, key=lambda i: opens[i])
        picks = {order[int(round(q * (len(order) - 1)))] for q in np.linspace(0.2, 1.0, STRIP_FRAMES)}
    shots = {}
    streams = [_rendered_with_meshes(x) for x in runs]
    prev = None
    motion = {name: [] for name in variants + ["real"]}     # frame-to-frame change in the mouth box
    for i, (real, *ren) in enumerate(zip(islice(video_frames(path), start, max_frames), *streams)):
        m = r.meshes[i]
        last, prev = prev, (real, [x[0] for x in ren])
        if m is None:
            continue
        mb = box(m[LIPS, :2], MOUTH_GROW, real.shape[:2])
        if last is not None:
            x0, y0, x1, y1 = mb
            for name, a, b in zip(["real"] + variants, [real] + [x[0] for x in ren], [last[0]] + last[1]):
                motion[name].append(np.abs(a[y0:y1, x0:x1].astype(np.float32) - b[y0:y1, x0:x1]).mean())
        if i == 0 or (i % step and i not in picks):
            continue
        fb = box(m[:, :2], 0.0, real.shape[:2])
        row = {}
        for name, (img, mesh) in zip(variants + ["static"], ren + [(static, r.meshes[0])]):
            row[name] = (*scores(real, img, mb), *scores(real, img, fb), lip_error(m, mesh),
                         centred_ssim(real, m, img, mesh, mb))
        if ceilings:
            for name, img in ceiling_frames(r, rig, off, i, real, np.asarray(m, np.float64), ren[0][0]).items():
                row[name] = (*scores(real, img, mb), *scores(real, img, fb), np.nan, np.nan)
        rows.append(row)
        if i in picks:
            shots[i] = (real, *[x[0] for x in ren], mb)
    res = {"clip": path.name, "frames": len(r.meshes), "scored": len(rows), "start": start,
           "seconds": time.perf_counter() - t0, "size": static.shape[1::-1],
           "variants": variants + ["static"] + (list(CEILINGS) if ceilings else [])}
    if learn:
        res["interiors"] = len(bank.patches)
    real_motion = max(float(np.mean(motion["real"])), 1e-6) if motion["real"] else np.nan
    for name in res["variants"]:
        a = np.array([row[name] for row in rows])
        res[name] = np.nanmean(a, axis=0) if len(a) else np.full(6, np.nan)
        flicker = float(np.mean(motion[name])) / real_motion if name in motion and motion[name] else (0.0 if name == "static" else np.nan)
        res[name] = np.append(res[name], flicker)
    if strips is not None and shots:
        res["strips"] = write_strips(strips, path.stem + ("_learn" if learn else ""), shots, static,
                                     r.identity.face_box)
    return res


def write_strips(folder: Path, stem: str, shots: dict, static: np.ndarray, face_box) -> list[Path]:
    """Two PNGs: face box and mouth box of the picked frames; rows real / rendered (/ learned) / static."""
    import cv2
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    x0, y0, x1, y1 = face_box
    for kind in ("face", "mouth"):
        cols = []
        for i in sorted(shots):
            real, *rens, mb = shots[i]
            bx = (x0, y0, x1, y1) if kind == "face" else mb
            if kind == "mouth":       # the same box in every row (the real frame's), square-ish and enlarged
                cx, cy = (bx[0] + bx[2]) / 2, (bx[1] + bx[3]) / 2
                s = max(bx[2] - bx[0], bx[3] - bx[1]) / 2
                bx = (int(max(cx - s, 0)), int(max(cy - s * 0.7, 0)), int(cx + s), int(cy + s * 0.7))
            tiles = [img[bx[1]:bx[3], bx[0]:bx[2]] for img in (real, *rens, static)]
            side = 256 if kind == "face" else 320
            tiles = [cv2.resize(t, (side, int(round(side * t.shape[0] / t.shape[1]))),
                                interpolation=cv2.INTER_AREA if t.shape[1] > side else cv2.INTER_CUBIC) for t in tiles]
            cols.append(np.concatenate(tiles, axis=0))
        h = min(c.shape[0] for c in cols)
        strip = np.concatenate([c[:h] for c in cols], axis=1)
        p = folder / f"{stem}_{kind}.png"
        Image.fromarray(strip).save(p)
        out.append(p)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", type=Path, default=ROOT.parent / "shared" / "train")
    ap.add_argument("--clips", default=",".join(DEFAULT_CLIPS), help="comma-separated file names under --root")
    ap.add_argument("--max-frames", type=int, default=200)
    ap.add_argument("--step", type=int, default=2, help="score every step-th frame")
    ap.add_argument("--learn", action="store_true",
                    help="learn the mouth interiors (avatar face learn) from each clip's first half, "
                         "reenact the second half with and without them")
    ap.add_argument("--ceilings", action="store_true",
                    help="also score the renderer's upper bounds: real lip placement, the real mesh, "
                         "the real mesh and interior")
    ap.add_argument("--strips", default="/tmp/avatar-bench-reenact",
                    help="folder for the strip PNGs ('' for none)")
    args = ap.parse_args()

    import cv2

    cv2.setNumThreads(1)
    clips = [args.root / c for c in args.clips.split(",") if c]
    missing = [c for c in clips if not c.is_file()]
    if missing:
        sys.exit(f"bench_reenact: clips not found: {', '.join(map(str, missing))} "
                 f"(the real footage lives in ../shared/train; give --root)")
    strips = Path(args.strips) if args.strips else None
    print(f"machine: {platform.machine()} cores={os.cpu_count()} python={platform.python_version()}")
    print(f"frames: first {args.max_frames} per clip{' (learn: first half; scored: second half)' if args.learn else ''}, "
          f"every {args.step}th scored; "
          f"mouth box = real lip landmarks +{MOUTH_GROW:.0%}; lip error in % of eye distance")
    head = (f"{'clip':44s} {'who':7s} {'mouthSSIM':>9s} {'1-SSIM':>7s} {'mPSNR':>6s} "
            f"{'faceSSIM':>8s} {'fPSNR':>6s} {'lipErr%':>7s} {'mSSIMc':>6s} {'change':>6s}")
    print(head)
    results = []
    for c in clips:
        res = run_clip(c, args.max_frames, args.step, strips, learn=args.learn, ceilings=args.ceilings)
        results.append(res)
        for name in res["variants"]:
            s = res[name]
            print(f"{res['clip'][:44]:44s} {name[:7]:7s} {s[0]:9.4f} {1 - s[0]:7.4f} {s[1]:6.2f} {s[2]:8.4f} {s[3]:6.2f} "
                  f"{s[4]:7.2f} {s[5]:6.3f} {s[6]:6.2f}")
        print(f"{'':44s} ({res['size'][0]}x{res['size'][1]}, {res['frames']} frames, {res['scored']} scored, "
              f"{res['seconds']:.1f} s" + (f", photo = frame {res['start']}, {res['interiors']} interiors learned"
                                           if args.learn else "") + ")" + (f" strips: {', '.join(map(str, res['strips']))}" if 'strips' in res else ""))
    for name in results[0]["variants"]:
        s = np.median(np.array([r[name] for r in results]), axis=0)
        print(f"{'median':44s} {name[:7]:7s} {s[0]:9.4f} {1 - s[0]:7.4f} {s[1]:6.2f} {s[2]:8.4f} {s[3]:6.2f} {s[4]:7.2f} {s[5]:6.3f} {s[6]:6.2f}")
    above = sum(r["ours"][0] > r["static"][0] for r in results)
    print(f"mouth SSIM above the static baseline on {above}/{len(results)} clips")
    if args.learn:
        better = sum(r["learned"][0] > r["ours"][0] for r in results)
        print(f"mouth SSIM with the learned interiors above the drawn/photo ones on {better}/{len(results)} clips")


if __name__ == "__main__":
    main()
