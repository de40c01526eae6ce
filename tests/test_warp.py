"""Warp renderer: render a hand-timed clip of the astronaut and re-detect it with MediaPipe."""
import numpy as np
import pytest

from avatar.motion import phoneme_motion
from avatar.face.measure import mouth_open
from avatar.render import get_renderer
from avatar.render.warp import WarpRenderer
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
    for i in (2, 6):                               # ɑː ɑ
        assert measured[i] > rest + 0.06, (sp.phonemes[i], measured)
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
