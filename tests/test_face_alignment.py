"""face-alignment detector: the 68 -> 478 mapping (checked against MediaPipe's own meshes)
and the error paths (package or weights missing: never a download)."""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from avatar.errors import AvatarError
from avatar.face import detect_faces, fa_detector as fd, read_photo


@pytest.fixture(scope="module")
def photo(astronaut_path):
    return read_photo(astronaut_path)


@pytest.fixture(scope="module")
def mesh(photo):
    return detect_faces(photo)[0].astype(np.float64)


@pytest.fixture(autouse=True)
def fresh_aligner():
    fd._aligner.cache_clear()
    yield
    fd._aligner.cache_clear()


def errors(real, est):
    """Per-point 2D error in units of the outer-eye-corner distance."""
    return np.linalg.norm(real[:, :2] - est[:, :2], axis=1) / np.hypot(*(real[33, :2] - real[263, :2]))


def test_correspondence_table_is_68_distinct_mesh_points():
    assert fd.MP_OF_68.shape == (68,) and len(set(fd.MP_OF_68.tolist())) == 68
    assert fd.MP_OF_68.min() >= 0 and fd.MP_OF_68.max() < 468
    # eye corners and mouth corners sit where avatar.face.measure expects them
    assert (fd.MP_OF_68[36], fd.MP_OF_68[45], fd.MP_OF_68[48], fd.MP_OF_68[54]) == (33, 263, 61, 291)


def test_mapping_recovers_an_independent_mediapipe_mesh(photo):
    """The mirrored photo is a fresh MediaPipe detection, not the template itself."""
    real = detect_faces(np.ascontiguousarray(photo[:, ::-1]))[0].astype(np.float64)
    est = fd.mesh_from_68(real[fd.MP_OF_68])
    e = errors(real, est)
    assert est.shape == (478, 3) and est.dtype == np.float32
    assert e.mean() < 0.02 and e.max() < 0.1
    assert np.corrcoef(real[:, 2], est[:, 2])[0, 1] > 0.98      # depth in MediaPipe's convention


def test_mapping_follows_head_turn_scale_and_shift(mesh):
    a, b = np.radians(25), np.radians(-10)
    yaw = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    pitch = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    c = mesh.mean(0)
    moved = ((mesh - c) @ (pitch @ yaw).T) * 1.7 + c + (40.0, -25.0, 0.0)
    est = fd.mesh_from_68(moved[fd.MP_OF_68])
    assert errors(moved, est).max() < 0.01
    assert np.corrcoef(moved[:, 2], est[:, 2])[0, 1] > 0.99


def test_mapping_follows_an_open_mouth(mesh):
    """Lower lip and jaw pulled down smoothly: the inner lips (not all anchors) must follow."""
    eye = np.hypot(*(mesh[33, :2] - mesh[263, :2]))
    y_mouth = mesh[[13, 14], 1].mean()
    drop = 0.25 * eye * np.clip((mesh[:, 1] - y_mouth) / (0.04 * eye), 0, 1)
    opened = mesh.copy()
    opened[:, 1] += drop
    est = fd.mesh_from_68(opened[fd.MP_OF_68])
    e = errors(opened, est)
    assert e.mean() < 0.03
    from avatar.face.measure import mouth_open

    assert mouth_open(opened) > mouth_open(mesh) + 0.15              # the mouth really opened
    assert mouth_open(est) == pytest.approx(mouth_open(opened), abs=0.03)


def test_bad_input_shape():
    with pytest.raises(ValueError):
        fd.mesh_from_68(np.zeros((5, 2)))


# ---------------------------------------------------------------------------- detect_478 plumbing
class StandInAligner:
    """Plays face_alignment.FaceAlignment: returns given 68-point sets, smallest face first."""

    def __init__(self, faces):
        self.faces = faces

    def get_landmarks_from_image(self, image):
        return self.faces


def test_detect_478_maps_every_face_largest_first(mesh, monkeypatch):
    pytest.importorskip("torch")
    small = (mesh[fd.MP_OF_68, :2] - mesh[:, :2].mean(0)) * 0.5 + 60
    faces = [small, mesh[fd.MP_OF_68, :2]]
    monkeypatch.setattr(fd, "_aligner", lambda device: StandInAligner(faces))
    out = fd.detect_478(np.zeros((512, 512, 3), np.uint8))
    assert [o.shape for o in out] == [(478, 3), (478, 3)]
    assert errors(mesh, out[0]).max() < 1e-3                    # the large face first
    assert np.ptp(out[1][:, 0]) == pytest.approx(0.5 * np.ptp(mesh[:, 0]), rel=0.01)


def test_no_face_found(monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setattr(fd, "_aligner", lambda device: StandInAligner(None))
    assert fd.detect_478(np.zeros((64, 64, 3), np.uint8)) == []


# ---------------------------------------------------------------------------- errors
def test_missing_package_says_which_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "face_alignment", None)
    with pytest.raises(AvatarError, match=r"avatar-presenter\[face-alignment\]"):
        fd.detect_478(np.zeros((64, 64, 3), np.uint8))
    monkeypatch.setitem(sys.modules, "torch", None)             # the core install: no torch either
    with pytest.raises(AvatarError, match=r"needs torch.*avatar-presenter\[face-alignment\]"):
        fd.detect_478(np.zeros((64, 64, 3), np.uint8))


def test_missing_weights_name_files_and_folder_and_download_nothing(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")

    monkeypatch.setitem(sys.modules, "face_alignment", types.ModuleType("face_alignment"))
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    try:
        with pytest.raises(AvatarError) as e:
            fd.detect_478(np.zeros((64, 64, 3), np.uint8))
    finally:
        torch.hub.set_dir(old)
    msg = str(e.value)
    assert "\n" not in msg
    for name, url in fd.WEIGHTS.items():
        assert url in msg and str(tmp_path / "hub" / "checkpoints" / name) in msg
    assert not any((tmp_path / "hub").rglob("*.pth*"))           # nothing fetched


def test_corrupt_weights_are_a_clear_error(tmp_path):
    pytest.importorskip("face_alignment", reason="face_alignment not installed (extra 'face-alignment')")
    import torch

    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    try:
        d = fd.weights_dir()
        d.mkdir(parents=True)
        for name in fd.WEIGHTS:
            (d / name).write_bytes(b"not a checkpoint")
        with pytest.raises(AvatarError, match="could not load its weights"):
            fd.detect_478(np.zeros((64, 64, 3), np.uint8))
    finally:
        torch.hub.set_dir(old)
