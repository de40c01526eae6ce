"""avatar.face: identity from a real photo (the bundled astronaut), and clear errors."""
import sys
import types
import warnings

import numpy as np
import pytest
from PIL import Image

from avatar.errors import AvatarError
from avatar.face import estimate_yaw, load_identity


@pytest.fixture(scope="module")
def ident(astronaut_path):
    return load_identity(astronaut_path)


def test_identity_landmarks_are_a_sane_face(ident):
    lm = ident.landmarks
    h, w = ident.image.shape[:2]
    assert ident.image.dtype == np.uint8 and ident.image.shape == (512, 512, 3)
    assert lm.shape == (478, 3) and lm.dtype == np.float32
    assert (lm[:, 0] > 0).all() and (lm[:, 0] < w).all() and (lm[:, 1] > 0).all() and (lm[:, 1] < h).all()
    assert 45 < ident.eye_distance < 120
    # anatomy: eyes above the nose tip, nose above the mouth, mouth above the chin
    eyes_y = (lm[33, 1] + lm[263, 1]) / 2
    assert eyes_y < lm[1, 1] < lm[13, 1] < lm[152, 1]
    assert lm[33, 0] < lm[1, 0] < lm[263, 0]
    x0, y0, x1, y1 = ident.face_box
    assert x1 - x0 == y1 - y0 and 0 <= x0 and 0 <= y0 and x1 <= w and y1 <= h
    assert (lm[:, 0] >= x0).all() and (lm[:, 0] <= x1).all() and (lm[:, 1] >= y0).all() and (lm[:, 1] <= y1).all()
    # masks: face mask on the nose, off in the corners; the person covers the face
    nx, ny = np.round(lm[1, :2]).astype(int)
    assert ident.face_mask.shape == (h, w) and ident.face_mask[ny, nx] > 0.95
    assert ident.face_mask[2, 2] == 0 and ident.face_mask.min() >= 0 and ident.face_mask.max() <= 1
    assert ident.person_mask.shape == (h, w) and ident.person_mask[ny, nx] > 0.5
    assert abs(estimate_yaw(lm)) < 20


def test_cached_per_photo_content(astronaut_path, tmp_path, ident):
    assert load_identity(astronaut_path) is ident
    copy = tmp_path / "copy.png"
    copy.write_bytes(astronaut_path.read_bytes())
    again = load_identity(copy)                   # same bytes, other name: same arrays, own source
    assert again.landmarks is ident.landmarks and again.source == str(copy)


def test_exif_orientation_and_modes(astronaut_path, tmp_path, ident):
    im = Image.open(astronaut_path).convert("RGB")
    stored = im.transpose(Image.Transpose.ROTATE_90)          # what a phone stores...
    exif = Image.Exif()
    exif[0x0112] = 6                                           # ...with "rotate 90 CW to display"
    path = tmp_path / "phone.jpg"
    stored.save(path, quality=95, exif=exif)
    got = load_identity(path)
    assert got.image.shape == ident.image.shape
    assert np.abs(got.image.astype(int) - ident.image.astype(int)).mean() < 4
    assert np.abs(got.landmarks[:, :2] - ident.landmarks[:, :2]).max() < 6

    gray = tmp_path / "gray.png"
    im.convert("L").save(gray)
    g = load_identity(gray)
    assert g.image.shape == (512, 512, 3) and np.array_equal(g.image[..., 0], g.image[..., 1])
    for name, mode in (("cmyk.jpg", "CMYK"), ("rgba.webp", "RGBA")):
        p = tmp_path / name
        im.convert(mode).save(p, quality=95)
        got = load_identity(p)
        assert got.image.shape == (512, 512, 3) and got.image.dtype == np.uint8
        assert abs(got.eye_distance - ident.eye_distance) < 2


def test_large_photo_detects_on_a_downscaled_copy(astronaut_path, tmp_path, ident):
    p = tmp_path / "big.png"
    Image.open(astronaut_path).convert("RGB").resize((1600, 1600), Image.BICUBIC).save(p)
    big = load_identity(p)
    assert big.image.shape == (1600, 1600, 3)                 # kept at full resolution
    scale = 1600 / 512
    assert np.abs(big.landmarks[:, :2] / scale - ident.landmarks[:, :2]).max() < 4


def test_scaled_identity_is_the_same_face_smaller(ident):
    from avatar.face import face_mask, scaled

    half = scaled(ident, 0.5)
    assert half.image.shape == (256, 256, 3) and half.person_mask.shape == half.face_mask.shape == (256, 256)
    assert np.abs((half.landmarks[:, :2] + 0.5) * 2 - 0.5 - ident.landmarks[:, :2]).max() < 1e-3
    assert abs(half.eye_distance - ident.eye_distance / 2) < 0.01
    x0, y0, x1, y1 = half.face_box
    X0, Y0, X1, Y1 = ident.face_box
    assert x1 - x0 == y1 - y0 and abs((x1 - x0) * 2 - (X1 - X0)) <= 2 and abs(x0 * 2 - X0) <= 2
    assert np.array_equal(half.face_mask, face_mask(half.landmarks, (256, 256)))
    # the picture itself: the photo shrunk (a uniform area average), not another one
    big = ident.image.astype(np.float32).reshape(256, 2, 256, 2, 3).mean((1, 3))
    assert np.abs(half.image - big).mean() < 1.0


def test_face_mask_of_a_large_face_is_the_feathered_hull(ident):
    """A wide feather is blurred at a fraction of the size (1 s at 12 MP otherwise): within 1% of
    OpenCV's exact Gaussian of the filled hull."""
    import cv2

    from avatar.face import face_mask

    lm = ident.landmarks.copy()
    lm[:, :2] *= 4                                   # a face 4x the astronaut's in a 2048 px picture
    exact = np.zeros((2048, 2048), np.uint8)
    cv2.fillConvexPoly(exact, cv2.convexHull(np.round(lm[:, :2]).astype(np.int32)), 255, cv2.LINE_AA)
    sigma = 0.08 * float(np.linalg.norm(lm[33, :2] - lm[263, :2]))
    assert sigma > 16                                # the fast path
    exact = cv2.GaussianBlur(exact, (0, 0), sigma).astype(np.float32) / 255.0
    assert np.abs(face_mask(lm, (2048, 2048)) - exact).max() < 0.01


def test_errors_name_the_photo(tmp_path):
    flat = tmp_path / "flat.png"
    Image.new("RGB", (320, 240), (120, 160, 200)).save(flat)
    with pytest.raises(AvatarError, match=r"flat\.png.*no face"):
        load_identity(flat)
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"this is not a picture" * 20)
    with pytest.raises(AvatarError, match=r"junk\.jpg.*not a readable image"):
        load_identity(junk)
    with pytest.raises(AvatarError, match=r"missing\.png"):
        load_identity(tmp_path / "missing.png")


def test_face_too_small(astronaut_path, tmp_path):
    canvas = Image.new("RGB", (320, 320), (200, 200, 200))
    canvas.paste(Image.open(astronaut_path).convert("RGB").resize((256, 256)), (10, 10))
    p = tmp_path / "small.png"
    canvas.save(p)
    with pytest.raises(AvatarError, match=r"small\.png.*too small.*px between the outer eye corners") as e:
        load_identity(p)
    assert "\n" not in str(e.value)


def _in_canvas(astronaut_path, tmp_path, face_px: float, size: tuple[int, int], at: tuple[int, int]):
    """The astronaut scaled so its face is about `face_px` wide (its face box is 104 of 512 px), on a big canvas."""
    im = Image.open(astronaut_path).convert("RGB")
    side = round(512 * face_px / 104)
    canvas = Image.new("RGB", size, (170, 180, 190))
    canvas.paste(im.resize((side, side), Image.LANCZOS), at)
    p = tmp_path / f"wide{face_px}.jpg"
    canvas.save(p, quality=95)
    return p, (at[0] + side / 2, at[1] + side / 2)


def test_small_face_in_a_large_photo_is_found_and_named_too_small(astronaut_path, tmp_path):
    from avatar.face import MIN_FACE_WIDTH, find_small_faces

    p, (cx, cy) = _in_canvas(astronaut_path, tmp_path, 30, (3000, 2000), (1800, 1000))
    with pytest.raises(AvatarError, match=r"wide30\.jpg: face too small \(about (\d+) px wide.*; at least "
                       rf"{MIN_FACE_WIDTH} px.*\): use a closer photo") as e:
        load_identity(p)
    width = int(e.value.args[0].split("about ")[1].split(" px")[0])
    assert 20 <= width <= 45 and "\n" not in str(e.value), str(e.value)
    faces = find_small_faces(np.asarray(Image.open(p)))
    assert len(faces) == 1 and abs(faces[0][0] - cx) < 40 and abs(faces[0][1] - cy) < 70, faces   # in the picture


def test_a_face_big_enough_in_a_very_large_photo_is_animated(astronaut_path, tmp_path):
    """The whole photo is searched at 1024 px (the face would be 35 px there): the tiles find it."""
    p, (cx, cy) = _in_canvas(astronaut_path, tmp_path, 140, (4000, 3000), (2400, 1500))
    ident = load_identity(p)
    assert ident.eye_distance > 60 and abs(ident.landmarks[1, 0] - cx) < 150 and abs(ident.landmarks[1, 1] - cy) < 250
    x0, y0, x1, y1 = ident.face_box
    assert x0 < ident.landmarks[1, 0] < x1 and y0 < ident.landmarks[1, 1] < y1


def test_a_sideways_photo_warns_an_upright_or_tilted_one_does_not(astronaut_path, tmp_path):
    """A photo lying on its side (no EXIF orientation, or a wrong one) is animated as it is, with a
    warning that says so; an upright face, or one tilted as heads tilt, gets none."""
    from avatar.face import MAX_ROLL, estimate_roll

    im = Image.open(astronaut_path).convert("RGB")
    for angle, warned in ((90, True), (-90, True), (15, False), (0, False)):
        p = tmp_path / f"rot{angle}.png"
        im.rotate(angle, expand=True, fillcolor=(90, 90, 90)).save(p)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            ident = load_identity(p)
        leaning = [str(w.message) for w in seen if "leans" in str(w.message)]
        assert bool(leaning) is warned, (angle, leaning)
        assert abs(abs(estimate_roll(ident.landmarks)) - abs(angle)) < 20, angle   # the head itself leans a little
        if warned:
            assert str(p) in leaning[0] and "rotate it upright" in leaning[0] and abs(angle) > MAX_ROLL


def test_several_faces_warn_and_face_index_picks(astronaut_path, tmp_path):
    im = Image.open(astronaut_path).convert("RGB")
    two = Image.new("RGB", (1024, 512), (90, 90, 90))
    two.paste(im, (0, 0))
    two.paste(im.resize((400, 400)), (580, 60))
    p = tmp_path / "two.png"
    two.save(p)
    with pytest.warns(UserWarning, match="2 faces"):
        first = load_identity(p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        second = load_identity(p, face_index=1)
        assert first.landmarks[1, 0] < 512 < second.landmarks[1, 0]       # largest first
        assert first.eye_distance > second.eye_distance
        with pytest.raises(AvatarError, match="face_index 2 is out of range"):
            load_identity(p, face_index=2)


def test_profile_is_rejected(ident, tmp_path, monkeypatch):
    lm = ident.landmarks.astype(np.float64)
    c = lm.mean(0)
    a = np.radians(55)
    rot = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    turned = ((lm - c) @ rot.T + c).astype(np.float32)
    assert abs(abs(estimate_yaw(turned)) - 55) < 8
    import avatar.face as face

    monkeypatch.setattr(face, "_detect", lambda image: ([turned], []))
    p = tmp_path / "profile.png"
    Image.fromarray(ident.image).save(p)
    with pytest.raises(AvatarError, match=r"profile\.png.*turned too far"):
        load_identity(p)


def test_face_alignment_detector_is_used_lazily(ident, tmp_path, monkeypatch):
    import avatar.face as face

    calls = []
    fake = types.SimpleNamespace(detect_478=lambda image: calls.append(image.shape) or [ident.landmarks + 1])
    monkeypatch.setitem(sys.modules, "avatar.face.fa_detector", fake)
    monkeypatch.setattr(face, "fa_detector", fake, raising=False)
    p = tmp_path / "fa.png"
    Image.fromarray(ident.image).save(p)
    got = load_identity(p, detector="face-alignment")
    assert calls == [(512, 512, 3)]
    assert np.allclose(got.landmarks, ident.landmarks + 1)


def test_identity_store_gives_the_same_identity_without_measuring_again(astronaut_path, tmp_path, ident,
                                                                       monkeypatch):
    import avatar.face as face
    from avatar.face.store import IdentityStore

    store = IdentityStore(tmp_path / "identities")
    face._cache_slot.cache_clear()
    built = load_identity(astronaut_path, store=store)
    assert len(list(store.root.glob("*.npz"))) == 1
    for name in ("landmarks", "face_mask", "person_mask", "image"):
        np.testing.assert_array_equal(getattr(built, name), getattr(ident, name))
    assert built.face_box == ident.face_box

    def measured(*a):
        raise AssertionError("measured again")

    monkeypatch.setattr(face, "_measure", measured)   # another process: nothing in memory, all on disk
    face._cache_slot.cache_clear()
    loaded = load_identity(astronaut_path, store=store)
    for name in ("landmarks", "face_mask", "person_mask", "image"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(ident, name))
    # another face index or detector is another entry: measured, not served
    face._cache_slot.cache_clear()
    with pytest.raises(AssertionError, match="measured again"):
        load_identity(astronaut_path, face_index=1, store=store)
    face._cache_slot.cache_clear()


def test_identity_store_rebuilds_a_damaged_entry(astronaut_path, tmp_path, ident):
    import avatar.face as face
    from avatar.face.store import IdentityStore

    store = IdentityStore(tmp_path / "identities")
    face._cache_slot.cache_clear()
    load_identity(astronaut_path, store=store)
    (entry,) = store.root.glob("*.npz")
    for damage in (b"not a zip", None):
        if damage is None:   # a valid archive whose arrays were changed: the digest catches it
            with np.load(entry) as z:
                arrays = {k: z[k] for k in z.files}
            arrays["landmarks"] = arrays["landmarks"] + 1
            np.savez_compressed(entry, **arrays)
        else:
            entry.write_bytes(damage)
        face._cache_slot.cache_clear()
        with pytest.warns(UserWarning, match="failed its check"):
            again = load_identity(astronaut_path, store=store)
        np.testing.assert_array_equal(again.landmarks, ident.landmarks)
        assert store.get(entry.stem) is not None   # rebuilt and stored again
    face._cache_slot.cache_clear()


def test_identity_store_failures_store_nothing(tmp_path):
    from avatar.face.store import IdentityStore

    store = IdentityStore(tmp_path / "identities")
    blank = tmp_path / "blank.png"
    Image.new("RGB", (256, 256), (128, 128, 128)).save(blank)
    with pytest.raises(AvatarError, match="no face"):
        load_identity(blank, store=store)
    assert not list(store.root.glob("*.npz"))
