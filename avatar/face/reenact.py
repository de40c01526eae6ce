"""Self-reenactment: drive the renderer with a real clip's own motion, frame by frame.

    from avatar.face.reenact import reenact
    reenact("clip.mp4", "out.mp4")          # -> ReenactResult(out, frames, fps, size)

The clip's first frame is the photo. Every frame is measured with MediaPipe
(avatar.face.measure.mesh_frames) and turned into one Motion row in the renderer's
units (avatar.types.Motion): mouth opening and width, head yaw/pitch/roll relative to
the first frame (a rigid fit of the upper face), blink and brow raise (measured after
undoing the head pose). The output has the clip's frame size, frame rate and frame
count, frame i rendered from frame i's motion, and the clip's audio: rendered and real
frames can be compared one to one (bench/bench_reenact.py).

Motion has no head translation or size: both are measured too (the upper face's offset
and scale once the head pose is applied) and passed to the warp renderer beside the
Motion (`shift`, `zoom`: the speaker moving and leaning in or back).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from avatar.errors import AvatarError
from avatar.types import Identity, Motion, eye_distance

# upper-face points that move with the skull only (forehead, nose bridge and tip, eye
# corners, temples, cheekbones): the rigid fit of the head pose uses these
RIGID = (10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 109, 67, 103, 338, 297, 332, 33, 133, 263, 362,
         234, 454, 127, 356, 93, 323, 116, 345, 117, 346, 205, 425)
# where the head is and how large: RIGID and the base of the nose (rigid too, and nearer the mouth)
PLACEMENT = RIGID + (2, 98, 327, 129, 358, 64, 294)
# share of the fitted head scale change that is applied: the fit also absorbs the warp's
# head-pose errors, so it is shrunk towards 1 (17 clips outside bench_reenact's set: lip
# landmark error median 3.63% without the scale, 3.38% with all of it, 3.17% with half; since
# the photo is measured as tracked (WARM_UP), 15 of those clips: mouth SSIM median 0.5744 /
# 0.5911 / 0.6070 / 0.6060 with 0.25 / 0.5 / 0.75 / all of it, 0.75 better than 0.5 on 13/15)
ZOOM_SHARE = 0.75
# MediaPipe's first mesh of a clip comes from its detector, the later ones from its tracker,
# and on the very same picture the two differ (bench_reenact's six clips: lips 0.6-1.2%, the
# upper face up to 1.7% of the eye distance, settling after ~2-4 tracked repeats). Every
# frame's motion is measured against the first, so that difference became a constant error
# in every frame: the photo (the first frame) is fed this many extra times first.
WARM_UP = 4
LIDS = ((159, 145), (386, 374))          # upper / lower lid centre, image-left then image-right eye
BROW_TOP = (105, 334)                    # brow points above the eye centres
BROW_LIFT = 0.09                         # eye distances of brow raise at brow=1 (the renderer's BROW_LIFT)


@dataclass(frozen=True)
class ReenactResult:
    out: Path
    frames: int
    fps: float
    size: tuple[int, int]      # width, height
    faceless: int              # frames where MediaPipe found no face (motion interpolated)


def rigid_fit(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rotation R and centroids (cs, cd) with dst - cd ~= (src - cs) @ R.T (Kabsch, no scale).
    src, dst: (N, 3) points."""
    cs, cd = src.mean(0), dst.mean(0)
    h = (src - cs).T @ (dst - cd)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    r = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return r, cs, cd


def pose_angles(r: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) in degrees of a rotation matrix in the warp renderer's convention
    (avatar.renderers.warp._rotation: R = Rz(roll) Rx(pitch) Ry(yaw), each turning the other
    way from the right-hand rule, in image axes x right, y down, z into the picture)."""
    from scipy.spatial.transform import Rotation

    a, b, c = Rotation.from_matrix(r).as_euler("ZXY", degrees=True)
    return -np.array([c, b, a])


def _fill(values: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Interpolate rows where ok is False from their neighbours (per column)."""
    if ok.all():
        return values
    idx = np.arange(len(values))
    out = values.copy()
    for c in range(values.shape[1]):
        out[~ok, c] = np.interp(idx[~ok], idx[ok], values[ok, c])
    return out


def motion_from_meshes(meshes: Sequence[np.ndarray | None], fps: float, rest: np.ndarray | None = None) -> Motion:
    """One Motion row per mesh ((478, 3) pixels or None = no face: interpolated), relative
    to `rest` (default: the first mesh with a face), the photo the motion will drive."""
    from avatar.face.measure import mouth_open, mouth_width

    ok = np.array([m is not None for m in meshes], bool)
    if not ok.any():
        raise ValueError("no face in any frame")
    rest = np.asarray(rest if rest is not None else meshes[int(np.argmax(ok))], np.float64)
    rest_eye = float(eye_distance(rest))
    rows = np.zeros((len(meshes), 7))
    rigid = list(RIGID)

    def expression(lm: np.ndarray) -> np.ndarray:   # lm in the rest mesh's pose
        e = float(eye_distance(lm))
        lids = np.mean([np.linalg.norm(lm[a, :2] - lm[b, :2]) for a, b in LIDS]) / e
        brow = np.mean([(lm[lid, 1] - lm[top, 1]) for top, lid in zip(BROW_TOP, (159, 386))]) / e
        return np.array([lids, brow])

    rest_expr = expression(rest)
    rest_width = float(mouth_width(rest))
    for i, m in enumerate(meshes):
        if m is None:
            continue
        m = np.asarray(m, np.float64)
        r, cs, cd = rigid_fit(rest[rigid], m[rigid])
        # the mesh in the rest pose, scaled to the rest size: expressions without head motion
        canon = (m - cd) @ r + cs
        canon = cs + (canon - cs) * (rest_eye / max(float(eye_distance(canon)), 1e-6))
        lids, brow = expression(canon)
        rows[i] = [mouth_open(canon), mouth_width(canon) - rest_width, *pose_angles(r),
                   np.clip(1.0 - lids / max(rest_expr[0], 1e-6), 0, 1),
                   np.clip((brow - rest_expr[1]) / BROW_LIFT, 0, 1)]
    rows = _fill(rows, ok)
    return Motion(fps, rows[:, :2], rows[:, 2:5], rows[:, 5], rows[:, 6])


def identity_from_frame(image: np.ndarray, mesh: np.ndarray, source: str = "") -> Identity:
    """An Identity from one video frame and its (478, 3) mesh (no second detection, so the
    photo's landmarks are exactly the ones the motion is measured against)."""
    from avatar.face import MIN_EYE_DISTANCE, face_box, face_mask, person_mask

    h, w = image.shape[:2]
    lm = np.asarray(mesh, np.float32)
    eye = float(np.linalg.norm(lm[33] - lm[263]))
    if eye < MIN_EYE_DISTANCE:
        raise AvatarError(f"the face in the first frame is too small ({eye:.0f} px between the outer eye "
                          f"corners, at least {MIN_EYE_DISTANCE:.0f} px needed)", path=source or None,
                          hint="use a clip where the face is larger")
    return Identity(image=np.ascontiguousarray(image), landmarks=lm, face_box=face_box(lm, w, h),
                    face_mask=face_mask(lm, (h, w)), person_mask=person_mask(image), source=source)


@dataclass
class Reenactment:
    """A clip measured for self-reenactment: the photo (first frame), the motion, the audio."""

    identity: Identity
    motion: Motion
    meshes: list            # per frame (478, 3) float32 or None
    audio: np.ndarray       # (channels, n) float32
    sample_rate: int
    shift: np.ndarray       # (T, 2) head translation per frame in pixels (not part of Motion)
    appearance: object = None   # a .face file or MouthBank (avatar.face.appearance), or None
    zoom: np.ndarray | None = None   # (T,) head size per frame over the photo's (not part of Motion)

    def frames(self) -> Iterator[np.ndarray]:
        """Rendered frames at the clip's full size, frame i from frame i's motion."""
        for frame, _ in self.frames_with_landmarks():
            yield frame

    def frames_with_landmarks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        from avatar.renderers.warp import WarpRenderer

        return WarpRenderer(appearance=self.appearance).frames_with_landmarks(self.identity, self.motion,
                                                                              shift=self.shift, zoom=self.zoom)


def head_placement(identity: Identity, motion: Motion,
                   meshes: Sequence[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
    """(T, 2) translation and (T,) scale that put the rendered upper face (rotated by the
    motion's head pose) where the real one is and at its size, per frame: a least-squares
    fit of the PLACEMENT points, the scale about their centre, shrunk by ZOOM_SHARE
    (interpolated where there is no face). Without the scale a speaker leaning in has the mouth too high and too small."""
    from avatar.renderers.warp import WarpRenderer

    rig, off, _ = WarpRenderer().rig(identity)
    ok = np.array([m is not None for m in meshes], bool)
    out = np.zeros((len(meshes), 3))
    rigid = list(PLACEMENT)
    for i, m in enumerate(meshes):
        if m is not None:
            tgt = rig.target(motion.mouth[i], motion.head[i], motion.blink[i], motion.brow[i])[rigid, :2] + off
            real = np.asarray(m, np.float64)[rigid, :2]
            a, b = tgt - tgt.mean(0), real - real.mean(0)
            out[i] = [*(real.mean(0) - tgt.mean(0)), np.sum(a * b) / max(np.sum(a * a), 1e-9)]
    out = _fill(out, ok)
    return out[:, :2], 1.0 + ZOOM_SHARE * (out[:, 2] - 1.0)


def head_shift(identity: Identity, motion: Motion, meshes: Sequence[np.ndarray | None]) -> np.ndarray:
    """(T, 2) translation of head_placement (the scale left out)."""
    return head_placement(identity, motion, meshes)[0]


def _open_video(path: Path) -> float:
    from avatar.lips.evaluate import video_fps

    if not path.is_file():
        raise AvatarError("video not found", path=path, field="--video", hint="check the clip's path")
    return video_fps(path)


def prepare(video: str | Path, max_frames: int | None = None, *, start: int = 0, appearance=None) -> Reenactment:
    """Measure `video` for reenactment (MediaPipe over every frame from `start`, up to
    max_frames; frame `start` is the photo). appearance: see WarpRenderer."""
    from itertools import chain, islice, repeat

    from avatar.face.measure import mesh_frames
    from avatar.lips.evaluate import video_frames
    from avatar.video import read_audio

    path = Path(video)
    fps = _open_video(path)
    frames = islice(video_frames(path), start, None if not max_frames else start + max_frames)
    first = next(frames, None)
    if first is None:
        raise AvatarError("no video frames", path=path, hint="give a talking-head video")
    # the photo is measured as the tracker sees it, like every later frame (see WARM_UP)
    meshes = list(mesh_frames(chain(repeat(first, WARM_UP + 1), frames)))[WARM_UP:]
    if meshes[0] is None:
        raise AvatarError("no face found in the first frame", path=path,
                          hint="the first frame is the photo: trim the clip to start on a visible face")
    ident = identity_from_frame(first, meshes[0], str(path))
    motion = motion_from_meshes(meshes, fps, rest=meshes[0])
    audio, rate = read_audio(path)
    a0 = int(round(start / fps * rate))
    audio = audio[:, a0:a0 + int(round(len(meshes) / fps * rate))]      # exactly the frames' span
    shift, zoom = head_placement(ident, motion, meshes)
    return Reenactment(ident, motion, meshes, audio, rate, shift, appearance, zoom)


def reenact(video: str | Path, out: str | Path, *, max_frames: int | None = None, start: int = 0,
            appearance=None) -> ReenactResult:
    """Render `video`'s own motion on its first frame (or frame `start`), with its audio, into
    `out` (MP4). appearance: a .face file (avatar face learn) for the mouth interiors."""
    from avatar.video.tags import metadata
    from avatar.video import write_mp4

    if appearance is not None and not hasattr(appearance, "blend"):
        from avatar.face.appearance import load_appearance

        appearance = load_appearance(appearance)      # a bad file fails before the clip is read
    r = prepare(video, max_frames, start=start, appearance=appearance)
    h, w = r.identity.image.shape[:2]
    audio = r.audio if r.audio.shape[1] else None
    write_mp4(out, r.frames(), fps=r.motion.fps, audio=None if audio is None else audio.T,
              sample_rate=r.sample_rate, metadata=metadata(f"{Path(out).stem} (AI-generated self-reenactment)"))
    return ReenactResult(Path(out), len(r.motion), r.motion.fps, (w, h), sum(m is None for m in r.meshes))
