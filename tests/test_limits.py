"""Hostile and odd inputs: each limit of avatar/limits.py is a one-line AvatarError, found early."""
from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from avatar.errors import AvatarError


def _load(path: Path, text: str):
    from avatar.script import load

    path.write_text(text)
    return load(path)


def test_yaml_alias_bomb_is_refused_fast(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    t = time.perf_counter()
    with pytest.raises(AvatarError, match="aliases") as e:
        _load(tmp_path / "bomb.yaml", "\n".join(lines) + "\nscenes:\n  - narration: *a8\n")
    assert time.perf_counter() - t < 5 and "bomb.yaml:" in str(e.value)


@pytest.mark.parametrize("text", ["scenes:\n  - narration: " + "[" * 1000 + "]" * 1000 + "\n",
                                  "".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "x: 1\n"])
def test_deep_yaml_is_refused(tmp_path, text):
    with pytest.raises(AvatarError, match="nested more than"):
        _load(tmp_path / "deep.yaml", text)


def test_markdown_front_matter_is_checked_too(tmp_path):
    front = "".join("  " * i + f"k{i}:\n" for i in range(100)) + "  " * 100 + "x: 1\n"
    with pytest.raises(AvatarError, match="nested more than"):
        _load(tmp_path / "deck.md", f"---\n{front}---\n# Hi\n<!-- hello -->\n")


def test_script_size_and_scene_count(tmp_path, monkeypatch):
    import avatar.limits

    monkeypatch.setattr(avatar.limits, "MAX_SCRIPT_BYTES", 1000)
    with pytest.raises(AvatarError, match="larger than"):
        _load(tmp_path / "big.txt", "Hello there.\n\n" * 200)
    monkeypatch.setattr(avatar.limits, "MAX_SCENES", 3)
    with pytest.raises(AvatarError, match="4 scenes: at most 3"):
        _load(tmp_path / "many.txt", "One.\n\nTwo.\n\nThree.\n\nFour.\n")
    monkeypatch.setattr(avatar.limits, "MAX_NARRATION_CHARS", 10)
    with pytest.raises(AvatarError, match=r"many.yaml:2: scenes\[0\].narration: 24 characters"):
        _load(tmp_path / "many.yaml", "scenes:\n  - narration: twenty-four characters..\n")


def test_unsupported_script_type(tmp_path):
    with pytest.raises(AvatarError, match="unsupported script type '.json'"):
        _load(tmp_path / "talk.json", '{"scenes": []}')


@pytest.mark.parametrize("narration,line", [("Hello. [pause 1s and on", 4), ("Then ] this", 4)])
def test_unbalanced_brackets_name_the_line(tmp_path, narration, line):
    text = f"title: t\nscenes:\n  - narration: >\n      {narration}\n"
    with pytest.raises(AvatarError) as e:
        _load(tmp_path / "b.yaml", text)
    assert f"b.yaml:{line}:" in str(e.value) and ("unclosed" in str(e.value) or "without" in str(e.value))


def test_captions_drop_invisible_characters():
    from avatar.captions import build_cues
    from avatar.types import Word

    words = [Word("he\u200bllo", 0.0, 0.4), Word("\u202eworld", 0.4, 0.9), Word("\u200d", 0.9, 1.0)]
    cues = build_cues(words, text="he\u200bllo \u202eworld\u2066.")
    assert [c.text for c in cues] == ["hello world."]


# --------------------------------------------------------------------------- images
def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (its pixel data is a few bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("w,h", [(100_000, 100_000), (20_000, 20_000), (9_000, 9_000)])
def test_huge_image_headers_are_refused_before_decoding(tmp_path, w, h):
    from avatar.compose.images import load_image
    from avatar.face import read_photo

    p = tmp_path / "huge.png"
    p.write_bytes(_png_header(w, h))
    for read in (read_photo, load_image):
        with pytest.raises(AvatarError, match="too many pixels") as e:
            read(p)
        assert "huge.png" in str(e.value)


def test_large_photo_decodes_at_a_bounded_size(tmp_path):
    from PIL import Image

    from avatar.face import read_photo
    from avatar.limits import IMAGE_SIDE

    p = tmp_path / "big.jpg"
    Image.new("RGB", (6000, 3000), (90, 120, 200)).save(p, quality=80)
    img = read_photo(p)
    assert max(img.shape[:2]) <= IMAGE_SIDE and img.shape[1] == 2 * img.shape[0]


def test_a_16_bit_grey_image_reads_as_its_picture(tmp_path):
    """Pillow opens a 16-bit greyscale PNG as "I;16" and its convert("RGB") clips every value above
    255: the photo came out white (no face found) and a slide image blank."""
    from PIL import Image

    from avatar.compose.images import load_image
    from avatar.face import read_photo

    grey = np.tile(np.linspace(0, 65535, 200), (120, 1)).astype(np.uint16)   # black to white, left to right
    p = tmp_path / "grey16.png"
    Image.fromarray(grey).save(p)
    assert Image.open(p).mode.startswith("I;16")
    want = np.round(grey / 257.0)
    photo = read_photo(p)
    assert photo.shape == (120, 200, 3) and np.abs(photo[..., 1] - want).max() <= 1
    slide = np.asarray(load_image(p))
    assert np.abs(slide[..., 0] - want).max() <= 1 and (slide[..., 3] == 255).all()


def test_truncated_image_is_one_line_error(tmp_path):
    from avatar.face import read_photo

    p = tmp_path / "cut.png"
    p.write_bytes(_png_header(64, 64)[:30])
    with pytest.raises(AvatarError, match="not a readable image"):
        read_photo(p)


# --------------------------------------------------------------------------- recordings
def test_nan_and_inf_samples_are_silenced(tmp_path):
    import soundfile as sf

    from avatar.speech.recorded import RecordedVoice, load_audio
    from avatar.script.models import VoiceSpec

    t = np.arange(16000) / 16000
    a = (0.3 * np.sin(2 * np.pi * 220 * t) * (t > 0.2)).astype(np.float32)
    a[100:110], a[5000], a[6000] = np.nan, np.inf, -np.inf
    p = tmp_path / "nan.wav"
    sf.write(p, a, 16000, subtype="FLOAT")
    with pytest.warns(UserWarning, match="12 invalid samples"):
        audio, sr = load_audio(p)
    assert np.isfinite(audio).all() and sr == 16000
    with pytest.warns(UserWarning):
        speech = RecordedVoice(VoiceSpec(engine="recorded", audio=p)).synthesize("")
    assert np.isfinite(speech.audio).all() and speech.duration > 0.5
    sf.write(p, np.full(8000, np.nan, np.float32), 16000, subtype="FLOAT")
    with pytest.warns(UserWarning), pytest.raises(AvatarError, match="silent"):
        RecordedVoice(VoiceSpec(engine="recorded", audio=p)).synthesize("")


def test_recording_longer_than_supported_is_refused(tmp_path, monkeypatch):
    import soundfile as sf

    import avatar.limits
    from avatar.speech.recorded import load_audio

    p = tmp_path / "long.wav"
    sf.write(p, np.zeros(3 * 8000, np.float32), 8000, subtype="PCM_16")
    monkeypatch.setattr(avatar.limits, "MAX_RECORDING_SECONDS", 2)
    with pytest.raises(AvatarError, match="at most 0 minutes|supported") as e:
        load_audio(p)
    assert "long.wav" in str(e.value)
