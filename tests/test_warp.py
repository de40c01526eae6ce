"""Warp renderer: render a hand-timed clip of the astronaut and re-detect it with MediaPipe."""
import numpy as np
import pytest

from avatar.motion import phoneme_motion
from avatar.face.measure import mouth_open
from avatar.renderers import get_renderer
from avatar.renderers.warp import WarpRenderer
from avatar.types import Motion, Phoneme, Renderer, Speech

FPS = 25
# silence, "b ɑː b", silence, "m ɑ p", silence
SEQ = [("_", .5), ("b", .1), ("ˈɑː", .2), ("b", .1), ("_", .4), ("m", .1), ("ɑ", .2), ("p", .1), ("_", .5)]


def speech():
    out, t = [], 0.0
    for s, d in SEQ:
        out.append(Phoneme(s, t, t + d))
        t += d
    return Speech(np.zeros(int(t * 16000), np.float32), 16000, out)


def frame_at(sp, i):
    """The frame showing phoneme i's centre (the fitted rig runs REAL_FIT["lead"] s ahead)."""
    from avatar.motion.visemes import REAL_FIT

    p = sp.phonemes[i]
    return int(round(((p.start + p.end) / 2 - (REAL_FIT["lead"] if REAL_FIT else 0.0)) * FPS))


@pytest.fixture(scope="module")
def ident(astronaut_path):
    from avatar.face import load_identity

    return load_identity(astronaut_path)


@pytest.fixture(scope="module")
def mesh():
    import mediapipe as mp

    fm = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1)
    yield lambda img: np.array([[p.x * img.shape[1], p.y * img.shape[0]]
                                for p in fm.process(np.ascontiguousarray(img)).multi_face_landmarks[0].landmark])
    fm.close()


@pytest.fixture(scope="module")
def clip(ident):
    sp = speech()
    m = phoneme_motion(sp, FPS, seed=0)
    m.blink[:] = 0
    frames = list(WarpRenderer().frames_with_landmarks(ident, m))
    return sp, m, frames


def test_frames_shape_and_paste_back_leaves_the_rest_alone(ident, clip):
    sp, m, frames = clip
    assert len(frames) == len(m) == Motion.frame_count(sp.duration, FPS)
    x0, y0, x1, y1 = ident.face_box
    outside = np.ones(ident.image.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.abs(m.head).max() > 0.3              # the head does move in this clip
    moved = 0
    for f, lm in frames:
        assert f.shape == ident.image.shape and f.dtype == np.uint8
        assert lm.shape == (478, 2)
        assert np.array_equal(f[outside], ident.image[outside])       # exactly untouched
        moved += int((f[y0:y1, x0:x1] != ident.image[y0:y1, x0:x1]).any())
    assert moved > len(frames) // 2


def test_lips_close_on_bilabials_and_open_on_vowels(ident, clip, mesh):
    sp, m, frames = clip
    rest = mouth_open(mesh(ident.image))           # the photo itself: a smile showing teeth
    assert rest > 0.06
    measured = {i: float(mouth_open(mesh(frames[frame_at(sp, i)][0]))) for i in (1, 2, 3, 5, 6, 7)}
    for i in (1, 3, 5, 7):                         # b b m p
        assert measured[i] < min(0.04, rest - 0.04), (sp.phonemes[i], measured)
    from avatar.renderers.mouth import LIP_BAND

    # ɑː ɑ: well past the photo's smile, and about what the motion asks: MediaPipe reads wide
    # rendered openings short by a share (the lip band painted inside each inner lip, the
    # interior), as it does on the reenacted real clips (bench_reenact: rendered ~0.75-0.87 x
    # the real opening); the tongue drawn on ɑ (Motion.tongue) is partly read as lower lip,
    # so the opening is checked on the same frames with the tongue off too
    idx = [frame_at(sp, i) for i in (2, 6)]
    bare = Motion(FPS, m.mouth[idx], m.head[idx], m.blink[idx], m.brow[idx])
    bare_open = [float(mouth_open(mesh(f))) for f in WarpRenderer().frames(ident, bare)]
    for i, b in zip((2, 6), bare_open):
        target = float(m.mouth[frame_at(sp, i), 0])
        assert m.tongue[frame_at(sp, i)] > 0.1         # the phoneme path shows some tongue on ɑ
        assert measured[i] > rest + 0.04, (sp.phonemes[i], measured)
        assert 0.72 * target < b < target - LIP_BAND, (sp.phonemes[i], target, b)
        assert 0.65 * target < measured[i] <= b + 0.005, (sp.phonemes[i], target, measured, b)
    # the renderer's own landmarks agree with what MediaPipe sees
    f, lm = frames[frame_at(sp, 2)]
    assert abs(float(mouth_open(lm)) - measured[2]) < 0.06


def test_still_clip_keeps_the_head_still(ident, mesh):
    sp = speech()
    still = phoneme_motion(sp, FPS, seed=0, still=True)
    moving = phoneme_motion(sp, FPS, seed=0, expression_scale=3.0)
    pick = [0, len(still) // 3, len(still) // 2, 2 * len(still) // 3]
    r = WarpRenderer()

    def corners(motion):
        frames = list(r.frames(ident, Motion(FPS, motion.mouth[pick], motion.head[pick], 0 * motion.blink[pick],
                                             motion.brow[pick])))
        return np.array([mesh(f)[[33, 263, 133, 362]] for f in frames])

    c = corners(still)
    assert np.abs(c - c[0]).max() < 1.5
    c2 = corners(moving)
    assert np.abs(c2 - c2[0]).max() > 2.5          # the same check sees real head motion


@pytest.mark.parametrize("tilt", [0, 25])
def test_blink_and_brow_are_visible(ident, mesh, astronaut_path, tmp_path, tilt):
    from PIL import Image

    from avatar.face import load_identity

    if tilt:                                       # a tilted head blinks along its own face
        p = tmp_path / "tilted.png"
        Image.open(astronaut_path).convert("RGB").rotate(tilt, Image.BICUBIC, fillcolor=(200, 200, 200)).save(p)
        ident = load_identity(p)
    n = 3
    m = Motion(FPS, np.zeros((n, 2)), np.zeros((n, 3)), [0, 1, 0], [0, 0, 1])
    frames = list(WarpRenderer().frames(ident, m))
    lms = [mesh(f) for f in frames]
    lid = lambda lm: (np.linalg.norm(lm[159] - lm[145]) + np.linalg.norm(lm[386] - lm[374])) / 2
    assert lid(lms[1]) < 0.6 * lid(lms[0])         # MediaPipe sees closed lids as ~half open at most
    up = np.array([np.sin(np.radians(-tilt)), -np.cos(np.radians(tilt))])   # face "up" in the image
    up = up / np.linalg.norm(up)
    for i in (105, 334):                           # brows move up the face
        assert (lms[2][i] - lms[0][i]) @ up > 1.5


def test_crop_mode_and_landmarks(ident):
    m = Motion.rest(2, FPS)
    f, lm = next(WarpRenderer(size=256).frames_with_landmarks(ident, m, crop=True))
    assert f.shape == (256, 256, 3)
    x0, y0, x1, y1 = ident.face_box
    expect = (ident.landmarks[:, :2] - (x0, y0)) * 256 / (x1 - x0)
    upper = expect[:, 1] < expect[1, 1]            # the rest motion closes the mouth; the rest stays put
    assert np.abs(lm[upper] - expect[upper]).max() < 1e-3
    assert np.abs(lm[14, 1] - expect[14, 1]) > 2   # lower lip raised to close the photo's smile
    # at rest the crop is the photo's face box, resized (the closed mouth aside)
    import cv2

    ref = cv2.resize(ident.image[y0:y1, x0:x1], (256, 256), interpolation=cv2.INTER_CUBIC)  # upscaled
    top = slice(0, int(expect[1, 1]))              # above the nose tip nothing changes at rest
    assert np.abs(f[top].astype(int) - ref[top].astype(int)).mean() < 1.0


def test_get_renderer():
    from avatar.errors import AvatarError
    from avatar.script.models import RendererSpec

    r = get_renderer(RendererSpec(name="warp"))
    assert isinstance(r, WarpRenderer) and isinstance(r, Renderer)
    with pytest.raises(AvatarError):
        get_renderer("nonsense")


def _affines_by_solve(src, dst):
    """The renderer's former per-triangle numpy.linalg.solve (reference for the closed form)."""
    k = len(src)
    D = np.concatenate([dst, np.ones((k, 3, 1))], axis=2)
    bad = np.abs(np.linalg.det(D)) < 1e-6
    D[bad] = np.eye(3)
    S = src.copy()
    S[bad] = np.eye(3)[:, :2]
    A = np.concatenate([np.linalg.solve(D, S).transpose(0, 2, 1), np.array([[[1, 0, 0], [0, 1, 0]]], float)])
    A[:-1][bad] = [[1, 0, 0], [0, 1, 0]]
    return A.astype(np.float32)


def test_closed_form_affines_equal_the_solve():
    from avatar.renderers.warp import _affines

    rng = np.random.default_rng(0)
    src = rng.uniform(0, 512, (2000, 3, 2))
    dst = src + rng.normal(0, 8, src.shape)
    dst[:5] = dst[:5, :1]                          # collapsed triangles: the identity
    dst[5:10, 2] = (dst[5:10, 0] + dst[5:10, 1]) / 2   # a vertex on the opposite edge: degenerate too
    A, ref = _affines(src, dst), _affines_by_solve(src, dst)
    assert A.shape == ref.shape == (2001, 2, 3) and A.dtype == np.float32
    np.testing.assert_allclose(A, ref, rtol=1e-5, atol=1e-3)
    assert np.array_equal(A[:10], np.broadcast_to(np.float32([[1, 0, 0], [0, 1, 0]]), (10, 2, 3)))
    # each map takes its dst triangle onto its src triangle
    ones = np.concatenate([dst[10:], np.ones((len(dst) - 10, 3, 1))], axis=2)
    np.testing.assert_allclose(np.einsum("kij,kpj->kpi", A[10:-1].astype(np.float64), ones), src[10:], atol=0.05)


def test_upper_teeth_follow_the_skull_not_the_jaw():
    """paint_mouth: the upper teeth hang from the skull line, whatever the lower lip (jaw) does;
    moving the skull line (head pose) moves them."""
    from avatar.renderers.mouth import INNER_LOWER, MouthStyle, paint_mouth

    e = 200.0
    style = MouthStyle(np.array([30.0, 15, 15]), np.array([220.0, 210, 195]), np.array([150.0, 70, 70]), e,
                       gum=np.array([160.0, 90, 90]))
    xs = np.linspace(100, 200, len(INNER_LOWER))
    arc = 1 - ((xs - 150) / 50) ** 2
    upper = np.stack([xs, 100 - 4 * arc], 1)

    def paint(drop, skull_dy=5.0):                         # the opening lifts the upper lip 5 px above the teeth line
        f = np.full((200, 300, 3), 128, np.uint8)
        lower = np.stack([xs, 100 + drop * arc], 1)
        paint_mouth(f, upper, lower, style, skull=upper + [0, skull_dy])
        return f.astype(int)

    half, wide = paint(16), paint(32)
    teeth = (slice(99, 102), slice(135, 165))              # under the upper lip (and its inner band)
    assert half[teeth].mean() > 150                        # bright teeth there
    assert np.abs(half[teeth] - wide[teeth]).max() <= 3    # the jaw opening does not move them
    moved = paint(16, skull_dy=11.0)                       # the head lowers the teeth line 6 px more
    below = (slice(103, 107), slice(135, 165))
    assert moved[below].mean() > half[below].mean() + 40   # teeth now where the cavity was
    assert wide[106:112, 140:160].mean() < 60              # below the teeth in the open mouth: dark cavity


def _style(e=200.0):
    from avatar.renderers.mouth import MouthStyle

    return MouthStyle(np.array([30.0, 15, 15]), np.array([220.0, 210, 195]), np.array([170.0, 80, 80]), e,
                      gum=np.array([160.0, 90, 90]))


def _lips(drop):
    from avatar.renderers.mouth import INNER_LOWER

    xs = np.linspace(100, 200, len(INNER_LOWER))
    arc = 1 - ((xs - 150) / 50) ** 2
    return np.stack([xs, 100 - 4 * arc], 1), np.stack([xs, 100 + drop * arc], 1)


def test_tongue_is_drawn_inside_the_mouth_only_and_grows_smoothly():
    """paint_mouth's tongue: nothing at 0, only inside the inner lips, more tongue-coloured
    area as the channel rises, and no pixel jumps between nearby channel values."""
    from avatar.renderers.mouth import paint_mouth

    style = _style()
    upper, lower = _lips(30)

    def paint(t):
        f = np.full((200, 300, 3), 128, np.uint8)
        paint_mouth(f, upper, lower, style, tongue=t)
        return f.astype(int)

    base = paint(0.0)
    f0 = np.full((200, 300, 3), 128, np.uint8)
    paint_mouth(f0, upper, lower, style)
    assert np.array_equal(base, f0)                        # 0 = exactly the interior without a tongue
    ramp = [paint(t) for t in np.linspace(0, 1, 21)]
    changed = np.abs(ramp[-1] - base).max(2) > 2
    assert changed.sum() > 300                             # the tongue shows at 1
    rows, cols = np.nonzero(changed)
    assert rows.min() >= 96 and rows.max() <= 131 and cols.min() >= 100 and cols.max() <= 200   # inside the lips
    redness = lambda f: int((((f[..., 0] - f[..., 1]) > 40) & (f[..., 0] > 70)).sum())
    area = [redness(f) for f in ramp]
    assert area[-1] > area[0] + 300                        # tongue-coloured at 1
    shown = [int((np.abs(f - base).max(2) > 2).sum()) for f in ramp]
    assert all(b >= a for a, b in zip(shown, shown[1:]))   # it grows steadily with the channel
    steps = [np.abs(b - a).max() for a, b in zip(ramp, ramp[1:])]
    assert max(steps) <= 50                                # 0.05 of the channel never moves a pixel far (its front over the lower teeth)
    same = [paint(0.5), paint(0.5)]
    assert np.array_equal(*same)                           # deterministic: no per-frame noise


def test_tongue_channel_reaches_the_rendered_frames(ident):
    n = 3
    mouth = np.tile([0.25, 0.0], (n, 1))
    m = Motion(FPS, mouth, np.zeros((n, 3)), np.zeros(n), np.zeros(n), [0.0, 1.0, 0.0])
    frames = [f for f, _ in WarpRenderer().frames_with_landmarks(ident, m)]
    assert np.array_equal(frames[0], frames[2])
    diff = np.abs(frames[1].astype(int) - frames[0]).max(2) > 8
    assert diff.sum() > 50                                 # the tongue shows in the open mouth
    lm = next(WarpRenderer().frames_with_landmarks(ident, m))[1]
    rows, cols = np.nonzero(diff)
    assert lm[13, 1] - 3 <= rows.min() and rows.max() <= lm[14, 1] + 3   # between the inner lips


# triangles of a few samples (tested in bulk: exact edges) and large ones (OpenCV's fill, which
# covers the pixels an edge passes through too: a wider margin)
@pytest.mark.parametrize("cell, margin, share", [(1.3, 0.02, 0.5), (4.0, 1.0, 0.03), (9.0, 1.0, 0.25)])
def test_raster_gives_each_sample_a_triangle_that_holds_it(cell, margin, share):
    from avatar.renderers.warp import _raster

    rng = np.random.default_rng(int(cell * 10))
    n = int(40 / cell) + 2
    gx, gy = np.meshgrid(np.arange(n) * cell, np.arange(n) * cell)
    pts = np.stack([gx, gy], -1) + rng.uniform(-0.3, 0.3, (n, n, 2)) * cell
    tris = []
    for i in range(n - 1):
        for j in range(n - 1):
            a, b, c, d = pts[i, j], pts[i, j + 1], pts[i + 1, j], pts[i + 1, j + 1]
            tris += [(a, b, d), (a, d, c)]
    tris = np.array(tris, np.float32)
    keep = rng.random(len(tris)) > 0.1                       # some collapsed ones are skipped
    shape, offset = (30, 34), (1.0, 2.0)
    ids = _raster(tris, shape, offset=offset, step=1, keep=keep)
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]]
    px, py = xs + offset[0], ys + offset[1]

    def inside(t, margin):
        s = []
        for p0, p1 in ((t[0], t[1]), (t[1], t[2]), (t[2], t[0])):
            e = p1 - p0
            s.append((e[0] * (py - p0[1]) - e[1] * (px - p0[0])) / np.hypot(*e))
        s = np.stack(s) * np.sign(s[0] + s[1] + s[2] + 1e-12)
        return (s > margin).all(0)

    assert (ids >= 0).all()                                   # skipped triangles' samples get a neighbour's
    checked = 0
    for k in np.nonzero(keep)[0]:
        clear = inside(tris[k], margin)                       # well inside: no neighbour may claim it
        assert (ids[clear] == k).all(), k
        checked += clear.sum()
    assert checked > share * ids.size


def test_opening_stretches_the_upper_lip_and_keeps_the_lower(ident):
    """Opening the mouth: the upper lip's inner edge rises by UPPER_LIP_SHARE of the extra
    opening, its outer edge only by UPPER_OUTER_SHARE (real lips stretch thinner), so the
    upper lip thins by the difference; the lower lip drops whole (it keeps its thickness);
    the opening itself is what the motion asks."""
    from avatar.renderers.warp import UPPER_LIP_SHARE, UPPER_OUTER_SHARE

    assert UPPER_OUTER_SHARE < UPPER_LIP_SHARE
    rig, _, _ = WarpRenderer().rig(ident)
    e = rig.eye
    c0, c1 = rig.lm[61, :2], rig.lm[291, :2]
    ex = (c1 - c0) / np.linalg.norm(c1 - c0)
    ey = np.array([-ex[1], ex[0]])                       # down the face
    rest = rig.target(np.array([rig.rest_open, 0.0]), np.zeros(3), 0.0, 0.0)[:, :2]
    extra = 0.2
    wide = rig.target(np.array([rig.rest_open + extra, 0.0]), np.zeros(3), 0.0, 0.0)[:, :2]
    up = lambda lm, i: -float(lm[i] @ ey)                # height along the face
    assert up(wide, 13) - up(rest, 13) == pytest.approx(UPPER_LIP_SHARE * extra * e, rel=0.02)
    assert up(wide, 0) - up(rest, 0) == pytest.approx(UPPER_OUTER_SHARE * extra * e, rel=0.05, abs=0.02)
    thick = lambda lm, a, b: abs(up(lm, a) - up(lm, b))
    assert thick(rest, 0, 13) - thick(wide, 0, 13) == pytest.approx(
        (UPPER_LIP_SHARE - UPPER_OUTER_SHARE) * extra * e, rel=0.05)
    assert thick(wide, 17, 14) == pytest.approx(thick(rest, 17, 14), abs=0.01 * e)
    assert float(mouth_open(wide)) - float(mouth_open(rest)) == pytest.approx(extra, abs=0.01)
