"""avatar.video.mp4.PatchedFrame: a static picture plus a changed rectangle, encoded like the whole frame."""
from __future__ import annotations

import numpy as np
import pytest

from avatar.video.mp4 import PatchedFrame, Still, _i420_planes, _to_i420, write_mp4
from media import video_md5


def _frames(n=12, size=(96, 64), box=(34, 18, 74, 58), seed=1):
    rng = np.random.default_rng(seed)
    w, h = size
    bases = [Still(rng.integers(0, 256, (h, w, 3), np.uint8)) for _ in range(2)]
    x0, y0, x1, y1 = box
    return [PatchedFrame(bases[i // 6], (x0, y0), rng.integers(0, 256, (y1 - y0, x1 - x0, 3), np.uint8))
            for i in range(n)]


def test_rgb_is_base_with_patch():
    f = _frames(1)[0]
    img = f.rgb()
    assert img.shape == f.shape == (64, 96, 3)
    assert np.array_equal(img[18:58, 34:74], f.patch)
    outside = np.ones((64, 96), bool)
    outside[18:58, 34:74] = False
    assert np.array_equal(img[outside], f.base.rgb[outside])
    img[0, 0] = 1                                     # a new array each time: the base is untouched
    assert not np.shares_memory(img, f.base.rgb)


def test_even_rectangles_convert_like_the_whole_frame():
    f = _frames(1)[0]
    whole = _i420_planes(_to_i420(f.rgb()), 64, 96)
    vf = f.video_frame()
    for plane, ref in zip(vf.planes, whole):
        got = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, :plane.width]
        assert np.array_equal(got, ref)


def test_encoding_patched_frames_equals_encoding_their_pictures(tmp_path):
    frames = _frames()
    audio = np.zeros(16000, np.float32)
    a = write_mp4(tmp_path / "patched.mp4", frames, fps=12, audio=audio, sample_rate=16000, keyframes=(3,))
    b = write_mp4(tmp_path / "rgb.mp4", [f.rgb() for f in frames], fps=12, audio=audio, sample_rate=16000,
                  keyframes=(3,))
    assert video_md5(a) == video_md5(b)
    mixed = [f if i % 2 else f.rgb() for i, f in enumerate(frames)]   # arrays and patched frames in one stream
    assert video_md5(write_mp4(tmp_path / "mixed.mp4", mixed, fps=12)) == video_md5(
        write_mp4(tmp_path / "rgb2.mp4", [f.rgb() for f in frames], fps=12))


def test_mismatched_patched_frame_is_refused(tmp_path):
    frames = _frames(3)
    odd = PatchedFrame(Still(np.zeros((32, 48, 3), np.uint8)), (0, 0), np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="expected 96x64"):
        write_mp4(tmp_path / "bad.mp4", frames + [odd], fps=12)
    assert not (tmp_path / "bad.mp4").exists()
    with pytest.raises(ValueError, match="even"):
        PatchedFrame(frames[0].base, (1, 0), np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="even"):
        PatchedFrame(frames[0].base, (90, 0), np.zeros((2, 8, 3), np.uint8))   # past the right edge
    with pytest.raises(ValueError, match="even-sized"):
        Still(np.zeros((5, 4, 3), np.uint8))


def test_reused_frames_keep_only_the_asked_keyframes(tmp_path):
    # frames on one Still reuse one VideoFrame: a keyframe asked for frame 4 must not stick to the frames after it
    import av

    base = Still(np.full((64, 96, 3), 120, np.uint8))
    frames = [PatchedFrame(base, (32, 16), np.full((32, 32, 3), 100 + i, np.uint8)) for i in range(10)]
    path = write_mp4(tmp_path / "k.mp4", frames, fps=10, keyframes=(4,))
    with av.open(str(path)) as c:
        keys = [p.is_keyframe for p in c.demux(video=0) if p.size]
    assert keys == [i in (0, 4) for i in range(10)]
    assert video_md5(path) == video_md5(write_mp4(tmp_path / "r.mp4", [f.rgb() for f in frames], fps=10,
                                                  keyframes=(4,)))
