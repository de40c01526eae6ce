"""The painted mouth (avatar.renderers.mouth): the photo's own teeth, lower teeth with the jaw,
softness matched to the photo, no flicker. Synthetic faces only (no MediaPipe, no media)."""
import dataclasses

import numpy as np
import pytest

from avatar.renderers import mouth as M

SKIN, LIP = (200, 150, 130), (170, 90, 90)


def _style(e=200.0, **kw):
    return M.MouthStyle(np.array([30.0, 15, 15]), np.array([220.0, 210, 195]), np.array([170.0, 80, 80]), e,
                        gum=np.array([160.0, 90, 90]), **kw)


def _lips(drop, lift=4.0, cx=150.0, cy=100.0, half=50.0):
    """Inner-lip chains (INNER_UPPER / INNER_LOWER order): the upper one `lift` px above cy at
    the middle, the lower one `drop` px below it."""
    xs = np.linspace(cx - half, cx + half, len(M.INNER_UPPER))
    arc = 1 - ((xs - cx) / half) ** 2
    return np.stack([xs, cy - lift * arc], 1), np.stack([xs, cy + drop * arc], 1)


def _paint(upper, lower, style, skull=None, shape=(200, 300)):
    f = np.full((*shape, 3), 128, np.uint8)
    M.paint_mouth(f, upper, lower, style, skull=skull)
    return f.astype(int)


def _face(gap: float, teeth: bool):
    """A synthetic photo (300 x 300) and its (478, 3) landmarks: eyes 120 px apart, a mouth
    whose inner lips are `gap` px apart; teeth=True paints striped teeth between them."""
    import cv2

    rng = np.random.default_rng(0)
    lm = np.zeros((478, 3))
    t = np.linspace(0, 2 * np.pi, 478, endpoint=False)
    lm[:, 0], lm[:, 1] = 150 + 110 * np.cos(t), 160 + 130 * np.sin(t)      # the face's outline
    lm[33, :2], lm[263, :2] = (90, 110), (210, 110)
    lm[50, :2], lm[280, :2] = (100, 160), (200, 160)
    up, lo = _lips(gap / 2, lift=gap / 2, cx=150, cy=215, half=40)
    lm[list(M.INNER_UPPER), :2], lm[list(M.INNER_LOWER), :2] = up, lo
    lm[list(M.OUTER_UPPER), :2] = up - [0, 9]
    lm[list(M.OUTER_LOWER), :2] = lo + [0, 11]
    img = np.clip(np.array(SKIN) + rng.normal(0, 3, (300, 300, 3)), 0, 255).astype(np.uint8)
    outer = np.concatenate([lm[list(M.OUTER_UPPER), :2], lm[list(M.OUTER_LOWER[::-1]), :2]])
    inner = np.concatenate([up, lo[::-1]])
    cv2.fillPoly(img, [np.round(outer).astype(np.int32)], LIP)
    if teeth:
        stripes = np.where((np.arange(300) // 5) % 2 == 0, 240, 70)
        pattern = np.repeat(np.repeat(stripes[None, :, None], 300, 0), 3, 2).astype(np.uint8)
        m = M._poly_mask((300, 300), inner)
        img[m] = pattern[m]
    else:
        cv2.fillPoly(img, [np.round(inner).astype(np.int32)], (60, 30, 30))
    return img, lm


def test_teeth_from_the_photo_are_used_when_the_photo_shows_teeth():
    from avatar.face.measure import mouth_open

    img, lm = _face(16.0, teeth=True)
    style = M.mouth_style(img, lm, float(mouth_open(lm)))
    assert style.photo is not None and style.teeth.mean() > 200     # its own teeth, their colour
    closed_img, closed_lm = _face(1.0, teeth=False)
    closed = M.mouth_style(closed_img, closed_lm, float(mouth_open(closed_lm)))
    assert closed.photo is None                                     # nothing to take: drawn teeth

    up, lo = lm[list(M.INNER_UPPER), :2], lm[list(M.INNER_LOWER), :2]
    stripes = img[209:219, 125:175].astype(float).mean(2)
    corr = {}
    for name, st in (("photo", style), ("drawn", dataclasses.replace(style, photo=None))):
        f = np.full_like(img, 128)
        f[:] = SKIN
        M.paint_mouth(f, up, lo, st, skull=up)
        got = f[209:219, 125:175].astype(float).mean(2)
        corr[name] = np.corrcoef(got.ravel(), stripes.ravel())[0, 1]
    assert corr["photo"] > 0.6                  # the photo's own teeth pattern comes back
    assert corr["drawn"] < 0.3                  # (a drawn dentition does not have it)


def _lower_teeth_rows(f, top_row, bottom_row):
    """Rows in [top_row, bottom_row) of the middle columns where the paint is teeth: bright and
    grey (the background is 128 grey, the tongue red)."""
    mid = f[:, 140:160]
    teeth = (mid.mean(2) > 140) & (mid[..., 0] - mid[..., 1] < 30)
    rows = np.nonzero(teeth.mean(1) > 0.5)[0]
    return rows[(rows >= top_row) & (rows < bottom_row)]


def test_lower_teeth_follow_the_jaw_not_the_skull(monkeypatch):
    style = _style()
    upper, _ = _lips(40)
    skull = upper + [0, 5.0]
    rows = {}
    for name, drop, sk in (("open", 40, skull), ("wider", 48, skull), ("head", 40, skull + [0, 6.0])):
        u, lo = _lips(drop)
        rows[name] = _lower_teeth_rows(_paint(u, lo, style, skull=sk), 100 + drop // 2, 100 + drop)
    assert len(rows["open"]) >= 4                                  # lower teeth show when the mouth is open wide
    assert abs(rows["wider"].mean() - rows["open"].mean() - 8) <= 1.5   # they ride on the lower lip (the jaw)
    assert np.array_equal(rows["head"], rows["open"])              # the skull line does not carry them
    u, lo = _lips(6)                                               # barely open: no lower teeth yet
    barely = _paint(u, lo, style, skull=u + [0, 5.0])
    monkeypatch.setattr(M, "LOW_H", (0.0, 0.0))
    assert np.array_equal(barely, _paint(u, lo, style, skull=u + [0, 5.0]))
    assert len(_lower_teeth_rows(_paint(*_lips(40), style, skull=skull), 120, 140)) == 0   # (what LOW_H=0 switches off)


def _interior_steps(style, drops, skull_dy=5.0):
    frames = []
    for d in drops:
        u, lo = _lips(d)
        frames.append(_paint(u, lo, style, skull=u + [0, skull_dy]))
    return np.array([np.abs(b - a).mean() for a, b in zip(frames, frames[1:])])


def test_no_flicker_for_a_smooth_opening(monkeypatch):
    """Opening the jaw steadily changes the interior steadily: no step stands out (teeth,
    tongue and cavity all grow continuously with the opening); the same check catches a
    lower row of teeth that pops in at one opening."""
    drops = np.linspace(6, 44, 77)
    steps = _interior_steps(_style(), drops)
    assert steps.max() <= 2.5 * np.median(steps)
    monkeypatch.setattr(M, "LOW_RAMP", (0.12, 1e-6))              # a hard switch instead of a ramp
    popping = _interior_steps(_style(), drops)
    assert popping.max() > 2.5 * np.median(popping)


@pytest.mark.parametrize("sigma", [1.0, 2.0, 3.0])
def test_photo_blur_reads_a_known_blur(sigma):
    import cv2

    rng = np.random.default_rng(1)
    img = np.full((90, 120), 60, np.float32)
    img[:, 60:] = 190
    img[20:45, 15:40] = 120
    cv2.circle(img, (90, 60), 14, 30, -1)
    sharp = M.photo_blur(img + rng.normal(0, 1.5, img.shape).astype(np.float32))
    blurred = M.photo_blur(cv2.GaussianBlur(img, (0, 0), sigma) + rng.normal(0, 1.5, img.shape).astype(np.float32))
    assert sharp < 0.4
    assert abs(blurred - sigma) < 0.3 * sigma


def test_painted_interior_is_as_soft_as_the_photo():
    upper, lower = _lips(40)
    box = (slice(92, 146), slice(110, 190))
    read = {}
    for b in (0.0, 2.5):
        f = _paint(upper, lower, _style(blur=b), skull=upper + [0, 5.0])
        read[b] = M.photo_blur(f[box].astype(np.float32).mean(2))
    assert read[0.0] < 1.2
    assert abs(read[2.5] - 2.5) < 0.8
