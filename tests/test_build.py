"""Scene plans and the cache: every input file enters a plan by its content; the Python API;
the cache commands. Plan-level tests need no rendering; one test renders to show that the
keys are what the cache really uses."""
from __future__ import annotations

import os
import shutil
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from avatar.build.plan import plan
from avatar.cli import main
from avatar.script import load


def _wav(path: Path, seconds: float = 0.5, freq: float = 220.0) -> Path:
    t = np.arange(int(16000 * seconds)) / 16000
    pcm = (0.3 * np.sin(2 * np.pi * freq * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    return path


def _png(path: Path, color: str) -> Path:
    from PIL import Image

    Image.new("RGB", (40, 30), color).save(path)
    return path


def _pdf(path: Path, color: str) -> Path:
    from PIL import Image

    Image.new("RGB", (200, 100), color).save(path)
    return path


@pytest.fixture
def project(tmp_path, astronaut_path):
    """A 3-scene deck whose scenes use different input files (transition: cut)."""
    from avatar.motion.audio_model import DEFAULT_WEIGHTS, config_path
    from avatar.resources import assets_dir
    from avatar.speech.piper_voice import bundled_model

    d = tmp_path
    shutil.copy(assets_dir() / "fonts" / "DejaVuSans.ttf", d / "font.ttf")
    _png(d / "logo.png", "red")
    _png(d / "bg.png", "navy")
    (d / "brand.yaml").write_text("font: font.ttf\nlogo: logo.png\nbackground_image: bg.png\ntext_color: '#111111'\n")
    (d / "slow.yaml").write_text("# a slower joe\npreset: joe\nspeed: 0.9\nlexicon: {SQL: sequel}\n")
    shutil.copy(astronaut_path, d / "me.png")
    (d / "me.face").write_bytes(b"mouth interiors")   # planning only digests it
    _png(d / "chart.png", "green")
    _pdf(d / "deck.pdf", "white")
    _wav(d / "take.wav")
    model, cfg = bundled_model()
    shutil.copy(model, d / "voice.onnx")
    shutil.copy(cfg, d / "voice.onnx.json")
    shutil.copy(DEFAULT_WEIGHTS, d / "lips.safetensors")
    shutil.copy(config_path(DEFAULT_WEIGHTS), d / "lips.json")
    (d / "talk.yaml").write_text(
        "size: 160x90\nfps: 8\ntransition: cut\ntheme: {name: brand.yaml}\n"
        "scenes:\n"
        "  - slide: {layout: image, image: chart.png}\n"
        "    narration: SQL is fun.\n"
        "    voice: {preset: slow.yaml}\n"
        "    avatar: {photo: me.png, appearance: me.face}\n"
        "  - slide: {layout: pdf, pdf: deck.pdf, page: 1}\n"
        "    voice: {engine: recorded, audio: take.wav, transcript: hello}\n"
        "  - slide: {layout: title, title: Last}\n"
        "    narration: Bye.\n"
        "    voice: {model: voice.onnx}\n"
        "    avatar: {motion: audio, lips_model: lips.safetensors}\n")
    return d


def _keys(d: Path) -> list[str]:
    return [p.key for p in plan(load(d / "talk.yaml"))]


def _changed(before: list[str], after: list[str]) -> set[int]:
    return {i for i, (a, b) in enumerate(zip(before, after)) if a != b}


def _append(path: Path, data: bytes = b"\0") -> None:
    with open(path, "ab") as f:
        f.write(data)


EDITS = {
    # input kind: (edit, scenes that must re-render)
    "theme file": (lambda d: (d / "brand.yaml").write_text((d / "brand.yaml").read_text().replace("#111111", "#333333")),
                   {0, 1, 2}),
    "font": (lambda d: shutil.copy(d.parent / "other.ttf", d / "font.ttf"), {0, 1, 2}),
    "logo": (lambda d: _png(d / "logo.png", "blue"), {0, 1, 2}),
    "background image": (lambda d: _png(d / "bg.png", "black"), {0, 1, 2}),
    "voice preset": (lambda d: (d / "slow.yaml").write_text((d / "slow.yaml").read_text().replace("0.9", "0.8")), {0}),
    "lexicon": (lambda d: (d / "slow.yaml").write_text((d / "slow.yaml").read_text().replace("sequel", "S Q L")), {0}),
    "photo": (lambda d: _append(d / "me.png"), {0}),
    "appearance": (lambda d: _append(d / "me.face"), {0}),
    "slide image": (lambda d: _png(d / "chart.png", "yellow"), {0}),
    "pdf": (lambda d: _pdf(d / "deck.pdf", "gray"), {1}),
    "recording": (lambda d: _wav(d / "take.wav", freq=330.0), {1}),
    "piper voice": (lambda d: _append(d / "voice.onnx"), {2}),
    "lips checkpoint": (lambda d: _append(d / "lips.safetensors"), {2}),
}


@pytest.mark.parametrize("kind", list(EDITS))
def test_editing_an_input_replans_exactly_its_scenes(project, kind):
    from avatar.resources import assets_dir

    shutil.copy(assets_dir() / "fonts" / "DejaVuSans-Bold.ttf", project.parent / "other.ttf")
    before = _keys(project)
    assert len(set(before)) == 3
    edit, expected = EDITS[kind]
    edit(project)
    assert _changed(before, _keys(project)) == expected


def test_touching_files_replans_nothing(project):
    before = _keys(project)
    later = os.stat(project / "talk.yaml").st_mtime + 3600
    for p in project.iterdir():
        os.utime(p, (later, later))
    assert _keys(project) == before


def test_crossfade_plan_holds_the_previous_scene(project):
    text = (project / "talk.yaml").read_text().replace("transition: cut", "transition: crossfade")
    (project / "talk.yaml").write_text(text)
    plans = plan(load(project / "talk.yaml"))
    assert plans[0].previous is None and plans[1].previous is not None
    before = [p.key for p in plans]
    _png(project / "chart.png", "yellow")   # scene 0's slide: scene 1 fades from it
    assert _changed(before, _keys(project)) == {0, 1}


def test_plan_round_trips_and_key_ignores_position(project):
    from avatar.build.plan import ScenePlan

    plans = plan(load(project / "talk.yaml"))
    again = ScenePlan.from_json(plans[2].to_json())
    assert again == plans[2] and again.key == plans[2].key
    moved = ScenePlan(**{**again.__dict__, "index": 7, "source": "elsewhere.yaml"})
    assert moved.key == plans[2].key


def test_missing_lips_model_is_a_one_line_error(project, capsys):
    text = (project / "talk.yaml").read_text().replace("lips.safetensors", "nope.safetensors")
    (project / "talk.yaml").write_text(text)
    with pytest.raises(SystemExit) as e:
        main(["check", str(project / "talk.yaml")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "nope.safetensors" in err and err.count("\n") == 1


def test_lips_model_selects_the_checkpoint(tmp_path):
    """A broken checkpoint named by avatar.lips_model is the one that gets loaded (and fails clearly)."""
    from avatar.errors import AvatarError
    from avatar.motion import make_motion
    from avatar.script.models import AvatarSpec
    from avatar.types import Speech

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    (tmp_path / "bad.json").write_text("{}")
    speech = Speech(np.zeros(8000, np.float32) + 0.01, 16000)
    with pytest.raises(AvatarError, match="bad"):
        make_motion(speech, 10, AvatarSpec(motion="audio", lips_model=bad))


# --------------------------------------------------------------------------- rendering uses the keys
TINY = "size: 160x90\nfps: 8\ntransition: cut\ntheme: {{name: brand.yaml}}\navatar: {{layout: none}}\n" \
       "scenes:\n  - narration: Hello.\n  - narration: {second}\n"


def test_edited_theme_file_re_renders_and_mtime_does_not(tmp_path):
    from avatar.api import render

    (tmp_path / "brand.yaml").write_text("background: '#202020'\n")
    deck = tmp_path / "talk.yaml"
    deck.write_text(TINY.format(second="Bye."))
    cache = tmp_path / "cache"
    assert render(deck, tmp_path / "a.mp4", cache_dir=cache).rendered == 2
    os.utime(tmp_path / "brand.yaml", (1e9, 1e9))
    assert render(deck, tmp_path / "b.mp4", cache_dir=cache).rendered == 0
    (tmp_path / "brand.yaml").write_text("background: '#a02020'\n")
    r = render(deck, tmp_path / "c.mp4", cache_dir=cache)
    assert r.rendered == 2
    from avatar.video import read_frames

    before, after = next(read_frames(tmp_path / "a.mp4")), next(read_frames(tmp_path / "c.mp4"))
    assert after[..., 0].mean() > before[..., 0].mean() + 50   # the new red background is what was rendered


# --------------------------------------------------------------------------- the Python API
def test_api_calls_repeat_in_any_order(tmp_path, astronaut_path):
    import avatar
    import avatar.renderers  # noqa: F401  (once shadowed avatar.render)

    deck = avatar.Presentation(title="Hi", size="160x90", fps=8, avatar=avatar.AvatarSpec(layout="none"),
                               scenes=[avatar.Scene(narration="Hello there.")])
    events = []
    r1 = avatar.render(deck, tmp_path / "a.mp4", cache_dir=tmp_path / "c", on_progress=events.append)
    assert r1.rendered == 1 and (tmp_path / "a.mp4").is_file()
    assert events[-1].stage == "scenes" and events[-1].done == events[-1].total == 1
    s = avatar.say("Hi.", face=astronaut_path, out=tmp_path / "s.mp4", fps=8, size=64, motion="phonemes")
    assert s.frames > 0
    r2 = avatar.render(deck, tmp_path / "b.mp4", cache_dir=tmp_path / "c")
    assert r2.rendered == 0 and r2.frames == r1.frames
    speech = avatar.speak(deck, tmp_path / "n.wav")
    assert speech.duration > 0.5
    assert callable(avatar.render) and callable(avatar.say)
    assert [v.name for v in avatar.list_voices()] == ["joe", "joe-fast", "joe-slow"]
    assert avatar.load(Path(avatar.__file__).parent / "templates" / "sample.yaml").scenes


def test_a_large_photo_is_rendered_at_about_the_size_it_is_shown(tmp_path, astronaut_path, monkeypatch):
    """A phone photo's face is 1000-2500 px; a pip box shows 100-350 of them: the renderer animates
    the presenter scaled to RENDER_MARGIN times the box (once 10x slower than the video needed),
    and the closing frame (the next scene's crossfade) shows it the same way."""
    from PIL import Image

    import avatar
    import avatar.renderers.warp as warp
    from avatar.build.scene import RENDER_MARGIN

    big = tmp_path / "big.jpg"
    Image.open(astronaut_path).convert("RGB").resize((2048, 2048), Image.BICUBIC).save(big, quality=92)
    crops = []
    frames = warp.WarpRenderer.frames_with_landmarks

    def spy(self, identity, motion, **kw):
        x0, _, x1, _ = identity.face_box
        crops.append((x1 - x0, identity.image.shape[:2]))
        return frames(self, identity, motion, **kw)

    monkeypatch.setattr(warp.WarpRenderer, "frames_with_landmarks", spy)
    deck = avatar.Presentation(title="Big", size="640x360", fps=8, transition="crossfade",
                               avatar=avatar.AvatarSpec(photo=big, layout="pip", motion="phonemes"),
                               scenes=[avatar.Scene(narration="Hello there."), avatar.Scene(narration="Bye now.")])
    avatar.render(deck, tmp_path / "a.mp4", cache_dir=tmp_path / "c", jobs=1)
    from avatar.compose import SceneComposer

    x0, y0, x1, y1 = SceneComposer(deck, deck.scenes[0]).layout.avatar_box
    assert len(crops) == 2                                                 # one per scene
    for side, shape in crops:
        assert side <= RENDER_MARGIN * (x1 - x0) + 2, (side, x1 - x0)    # about 230 px, not 800
        assert max(shape) < 2048
    # the pictures are the presenter's: the box is not empty or flat
    from avatar.video import read_frames
    last = list(read_frames(tmp_path / "a.mp4"))[-1]
    assert last[y0 + 5:y1 - 5, x0 + 5:x1 - 5].std() > 20


def test_say_defaults_to_a_web_size_and_renders_a_large_photo_at_it(tmp_path, astronaut_path, monkeypatch):
    """A photo larger than SAY_SIDE gives a SAY_SIDE clip by default (a 4096 px clip needs H.264
    level 6, which phones and many browsers do not play), animated at about that size; an
    explicit size above IMAGE_SIDE is a one-line error."""
    from PIL import Image

    import avatar
    import avatar.api as api
    from avatar.errors import AvatarError

    monkeypatch.setattr(api, "SAY_SIDE", 600)        # the same rule, at a size the test renders quickly
    big = tmp_path / "big.png"
    Image.open(astronaut_path).convert("RGB").resize((1024, 1024), Image.BICUBIC).save(big)
    p = avatar.Presenter(face=big, fps=8, motion="phonemes")
    assert p.size == 600
    frames = list(p.say("Hi.").frames)
    assert frames[0].shape == (600, 600, 3)
    assert p.identity.image.shape[:2] == (600, 600)                         # animated at the output's size
    small = avatar.Presenter(face=big, fps=8, size=128, motion="phonemes")
    assert small.identity.image.shape[:2] == (128, 128)
    assert list(small.say("Hi.").frames)[0].shape == (128, 128, 3)
    # about the same clip as from the photo shrunk to that size beforehand (measured on another picture)
    shrunk = tmp_path / "shrunk.png"
    Image.open(big).resize((400, 400), Image.BICUBIC).save(shrunk)
    mid = avatar.Presenter(face=big, fps=8, size=400, motion="phonemes")
    ref = avatar.Presenter(face=shrunk, fps=8, motion="phonemes")
    assert ref.identity.image.shape == mid.identity.image.shape
    a, b = list(mid.say("Hi.").frames), list(ref.say("Hi.").frames)
    assert len(a) == len(b) and np.abs(a[3].astype(int) - b[3].astype(int)).mean() < 1.5   # 0.5 here
    crop = avatar.Presenter(face=big, fps=8, size=128, crop=True, motion="phonemes")
    x0, _, x1, _ = crop.identity.face_box                                   # the crop: RENDER_MARGIN x the output
    assert 2 * 128 - 2 <= x1 - x0 <= 2 * 128 + 2
    assert list(crop.say("Hi.").frames)[0].shape[:2] in ((128, 128), (128, 126), (126, 128))
    assert avatar.Presenter(face=astronaut_path, fps=8).size is None      # smaller photos: their own size
    with pytest.raises(AvatarError, match="too large"):
        avatar.Presenter(face=astronaut_path, size=5000)


def test_presenter_loads_once_and_streams(tmp_path, astronaut_path):
    import avatar

    p = avatar.Presenter(face=astronaut_path, fps=8, size=64, motion="phonemes")
    clip = p.say("Hello there.")
    frames = list(clip.frames)
    assert len(frames) == clip.n_frames and frames[0].shape == (64, 64, 3)
    assert [w.text for w in clip.words] == ["Hello", "there"]
    voice = p._voice
    r = p.say_to_file("Goodbye.", tmp_path / "bye.mp4")
    assert p._voice is voice and r.frames > 0 and (tmp_path / "bye.srt").is_file()


def test_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code in (0, None)
    assert capsys.readouterr().out.strip() == f"avatar-presenter {version('avatar-presenter')}"


# --------------------------------------------------------------------------- avatar cache
def _cli(args, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        main(args)
    out = capsys.readouterr()
    return e.value.code or 0, out.out + out.err


def test_cache_info_prune_clear(tmp_path, capsys, monkeypatch):
    from avatar.api import render

    deck = tmp_path / "t.yaml"
    deck.write_text(TINY.format(second="Bye.").replace("theme: {name: brand.yaml}\n", ""))
    cache = tmp_path / "cache"
    monkeypatch.setenv("AVATAR_CACHE", str(cache))   # honoured when no --cache-dir is given
    render(deck, tmp_path / "a.mp4")
    code, out = _cli(["cache", "info"], capsys)
    assert code == 0 and str(cache) in out and "segments  2" in out
    code, out = _cli(["cache", "prune", "--older-than", "30d"], capsys)
    assert code == 0 and "removed 0 scene(s)" in out
    # the least recently used scene goes first
    seg = sorted((cache / "scenes").glob("*.mp4"))
    old = seg[0]
    os.utime(old, (1e9, 1e9))
    os.utime(old.with_suffix(".json"), (1e9, 1e9))
    keep = sum(p.stat().st_size for p in seg[1:]) + sum(p.with_suffix(".json").stat().st_size for p in seg[1:])
    code, out = _cli(["cache", "prune", "--max-size", f"{keep}B"], capsys)
    assert code == 0 and "removed 1 scene(s)" in out
    assert not old.exists() and seg[1].exists()
    assert render(deck, tmp_path / "b.mp4").rendered == 1
    code, out = _cli(["cache", "prune", "--max-size", "lots"], capsys)
    assert code == 2 and "--max-size" in out
    code, out = _cli(["cache", "clear", "--cache-dir", str(cache)], capsys)
    assert code == 0 and "removed 2 scene(s)" in out and not cache.exists()


def test_corrupt_cached_segment_is_rendered_again(tmp_path):
    from avatar.api import render
    from avatar.video import probe

    deck = tmp_path / "t.yaml"
    deck.write_text(TINY.format(second="Bye.").replace("theme: {name: brand.yaml}\n", ""))
    cache = tmp_path / "cache"
    first = render(deck, tmp_path / "a.mp4", cache_dir=cache)
    seg = sorted((cache / "scenes").glob("*.mp4"))[0]
    seg.write_bytes(seg.read_bytes()[: seg.stat().st_size // 2])
    with pytest.warns(UserWarning, match="failed its check"):
        again = render(deck, tmp_path / "b.mp4", cache_dir=cache)
    assert again.rendered == 1 and probe(tmp_path / "b.mp4")["frames"] == first.frames


def test_prune_removes_stored_identities_by_age_and_size(tmp_path):
    from avatar.build.cache import SceneCache

    cache = SceneCache(tmp_path / "cache")
    ids = cache.identities.root
    ids.mkdir(parents=True)
    for name, age in (("old", 1e9), ("new", None)):
        for suffix in (".npz", ".lock"):
            f = ids / f"{name}{suffix}"
            f.write_bytes(b"x" * (1000 if suffix == ".npz" else 0))
            if age:
                os.utime(f, (age, age))
    assert cache.prune(older_than=30 * 86400) == (0, 1000)   # no scene removed, the old photo's bytes freed
    assert sorted(p.name for p in ids.iterdir()) == ["new.lock", "new.npz"]
    assert cache.prune(max_bytes=0) == (0, 1000)
    assert not list(ids.iterdir())
    cache.voices.mkdir()                                   # prepared voices go the same way
    (cache.voices / "v.onnx").write_bytes(b"x" * 500)
    os.utime(cache.voices / "v.onnx", (1e9, 1e9))
    assert cache.prune(older_than=30 * 86400) == (0, 500) and not list(cache.voices.iterdir())


_CHURN = """
import json, resource, sys
import numpy as np
taken = None
if sys.argv[1] == "configured":
    from avatar.build.memory import keep_freed_memory
    taken = keep_freed_memory()
faults = []
for i in range(12):          # two 1080p pictures made and dropped, as a frame loop does
    r = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a = np.ones((1080, 1920, 3), np.uint8)
    b = a + 1
    del a, b
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r)
print(json.dumps({"taken": taken, "faults": faults[2:]}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_rendering_process_reuses_the_memory_it_frees():
    """keep_freed_memory() (the command line and the scene workers): pictures made and dropped
    again and again reuse the same memory instead of new pages from the kernel (about 1000
    faults for each pair of 6 MB pictures with glibc's defaults)."""
    import json
    import subprocess

    def run(case: str) -> dict:
        out = subprocess.run([sys.executable, "-c", _CHURN, case], capture_output=True, text=True, check=True)
        return json.loads(out.stdout)

    default, configured = run("default"), run("configured")
    assert configured["taken"] is True
    assert min(default["faults"]) > 500                  # new pages for every picture (962 here)
    assert max(configured["faults"]) < 100               # the same memory again


def test_say_levels_its_clip_like_render_and_off_keeps_the_speech(tmp_path):
    """`say` brings its clip to -16 LUFS by default (Piper's raw speech is near -25), to the
    --loudness asked for, or leaves it as it is with "off"; a streamed recording is leveled the
    same as the same samples in memory; a target out of range is the one-line error of
    render's --loudness."""
    import avatar
    from avatar.api import leveled
    from avatar.errors import AvatarError
    from avatar.video import read_audio

    from media import measure

    text = "Hello there, this clip is loud enough to hear, and it says a few more words."
    got = {}
    for lufs in (None, -14, "off"):
        out = tmp_path / f"{lufs}.mp4"
        avatar.say(text, out=out, size=64, fps=8, motion="phonemes", loudness=lufs)
        got[lufs] = measure(*read_audio(out), peak=False)["I"]
    assert abs(got[None] + 16) < 1 and abs(got[-14] + 14) < 1, got
    assert got["off"] < -20, got       # the voice's own level
    with pytest.raises(AvatarError, match="--loudness"):
        avatar.say(text, out=tmp_path / "x.mp4", size=64, loudness=-99)

    rate = 22050
    speech = (0.05 * np.sin(np.arange(rate * 25) * 0.07)).astype(np.float32)
    speech[rate * 3] = 0.9                                          # a click: the limiter works too

    class Streamed:                                                 # what RecordingAudio offers
        def __len__(self):
            return len(speech)

        def read(self, start, n):
            return speech[start:start + n].copy()
    whole, streamed = leveled(speech, rate, -16.0), leveled(Streamed(), rate, -16.0)
    assert len(streamed) == len(whole)
    parts = np.concatenate([streamed.read(s, 7000) for s in range(0, len(speech), 7000)])
    assert np.allclose(parts, whole, atol=1e-5) and abs(measure(whole[None], rate)["I"] + 16) < 0.5
    assert leveled(speech, rate, None) is speech
