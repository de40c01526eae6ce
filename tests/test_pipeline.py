"""End to end: script -> MP4, decoded and checked; `avatar say`; scene cache; CLI errors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from avatar.cli import main

TWO_SCENES = """\
title: Pipeline test
size: 320x180
fps: 12
captions: {{burn: true}}
transition: cut
avatar: {{layout: pip, size: 0.5, position: bottom-right, motion: phonemes}}
scenes:
  - slide: {{layout: title, title: Hello}}
    narration: "Hello there. [pause 0.6s] Big map."
    pause_after: 0.3
  - slide: {{layout: bullets, title: Points, bullets: [One, Two]}}
    narration: "{second}"
    pause_after: 0.2
"""


def _write(tmp_path: Path, second: str = "Bob opened the box.") -> Path:
    p = tmp_path / "deck.yaml"
    p.write_text(TWO_SCENES.format(second=second))
    return p


def _frames(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    from avatar.api import render
    from avatar.script import load

    tmp = tmp_path_factory.mktemp("e2e")
    deck = load(_write(tmp))
    out = tmp / "talk.mp4"
    result = render(deck, out, cache_dir=tmp / "cache")
    return deck, out, result, tmp


def test_render_two_scenes_decodes(rendered):
    from avatar.speech.narrate import narrate_scene
    from avatar.video import probe

    deck, out, result, _ = rendered
    info = probe(out)
    # duration = narration + pauses of each scene, within one frame
    expected = sum(narrate_scene(deck, s).duration for s in deck.scenes)
    assert abs(info["duration"] - expected) <= 1.0 / deck.fps
    assert (info["width"], info["height"]) == (320, 180)
    frames = _frames(out)
    assert abs(len(frames) - round(expected * deck.fps)) <= 2
    assert info["audio_duration"] == pytest.approx(info["duration"], abs=1.5 / deck.fps)
    assert "AI-generated" in info["tags"].get("comment", "")
    # audio present and not silent
    import av

    with av.open(str(out)) as c:
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    assert np.sqrt(np.mean(audio.astype(np.float64) ** 2)) > 1e-3
    # the avatar corner moves while the slide's title area holds still (within one scene)
    first_scene = frames[: int(1.8 * deck.fps)]
    avatar_box = first_scene[:, 95:175, 235:315].astype(np.int16)
    title_box = first_scene[:, 10:60, 20:200].astype(np.int16)
    assert np.abs(np.diff(avatar_box, axis=0)).mean() > 0.5
    assert np.abs(np.diff(title_box, axis=0)).mean() < 0.5


def test_caption_files_follow_words(rendered):
    import srt

    deck, out, _, _ = rendered
    subs = list(srt.parse(out.with_suffix(".srt").read_text()))
    text = " ".join(s.content.replace("\n", " ") for s in subs)
    assert text.split() == ["Hello", "there.", "Big", "map.", "Bob", "opened", "the", "box."]
    # no cue spans the 0.6 s pause: "Hello there." and "Big map." are separate cues
    assert subs[0].content.replace("\n", " ") == "Hello there."
    starts = [s.start.total_seconds() for s in subs]
    assert starts == sorted(starts)
    # the second scene's cue starts after the first scene ends
    from avatar.speech.narrate import narrate_scene

    first = narrate_scene(deck, deck.scenes[0]).duration
    assert subs[-1].start.total_seconds() >= first - 1e-3
    assert out.with_suffix(".vtt").read_text().startswith("WEBVTT")


def test_rerun_reuses_unchanged_scenes(rendered):
    from avatar.api import render
    from avatar.script import load

    deck, out, first, tmp = rendered
    again = render(deck, tmp / "again.mp4", cache_dir=tmp / "cache")
    assert again.rendered == 0 and again.scenes == 2
    changed = load(_write(tmp, second="Mia read a map."))
    third = render(changed, tmp / "changed.mp4", cache_dir=tmp / "cache")
    assert third.rendered == 1


def test_say_writes_clip_and_captions(tmp_path, astronaut_path):
    from avatar.api import say
    from avatar.video import probe

    out = tmp_path / "hi.mp4"
    r = say("Hi Bob.", face=astronaut_path, out=out, fps=12, size=160, motion="phonemes")
    info = probe(out)
    assert (info["width"], info["height"]) == (160, 160)
    assert info["frames"] == r.frames
    assert out.with_suffix(".srt").exists()


def test_cli_help_is_light():
    code = ("import sys; from avatar.cli import app; import typer.testing as t; "
            "r = t.CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output; "
            "heavy = [m for m in ('torch', 'mediapipe', 'cv2', 'piper', 'av') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def _run_cli(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    return e.value.code, capsys.readouterr().err


def test_cli_bad_input_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("title: x\nscenes:\n  - slide: {layout: bulets, title: T}\n    narration: hi\n")
    out = tmp_path / "o.mp4"
    code, err = _run_cli(["render", str(bad), "-o", str(out)], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "bad.yaml:3" in err and "bulets" in err
    assert not out.exists()

    code, err = _run_cli(["render", str(tmp_path / "missing.yaml"), "-o", str(out)], capsys)
    assert code == 2 and "missing.yaml" in err and err.count("\n") == 1

    code, err = _run_cli(["say", "hi", "--face", str(tmp_path / "nope.png"), "-o", str(out)], capsys)
    assert code == 2 and "nope.png" in err and not out.exists()


def test_cli_bad_option_values_are_one_line_errors(tmp_path, capsys):
    out = tmp_path / "o.mp4"
    deck = _write(tmp_path)
    cases = [(["say", "hi", "--motion", "lips", "-o", str(out)], ["--motion", "phonemes"]),
             (["say", "hi", "--renderer", "gan", "-o", str(out)], ["--renderer", "warp"]),
             (["say", "-o", str(out)], ["nothing to say", "--audio"]),
             (["say", "hi", "--size", "1", "-o", str(out)], ["--size", "16"]),
             (["render", str(deck), "--size", "huge", "-o", str(out)], ["--size", "huge", "1280x720"])]
    for args, needles in cases:
        code, err = _run_cli(args, capsys)
        assert code == 2, (args, err)
        assert err.count("\n") == 1 and all(n in err for n in needles), (args, err)
        assert not out.exists()


def test_cli_check_summary(tmp_path, capsys):
    deck = _write(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["check", str(deck)])
    assert e.value.code in (0, None)
    outp = capsys.readouterr().out
    assert "scenes    2" in outp and "words" in outp


def test_characters_the_font_cannot_draw_are_named_before_rendering(tmp_path, capsys):
    """Emoji or CJK in a slide or in burned captions come out of the bundled Latin fonts as empty
    boxes: `check` (and `render`, which plans the same way) warns, naming the scene, the
    characters and the theme key, and the script stays valid."""
    from avatar.compose.theme import undrawable
    from avatar.resources import assets_dir

    latin = assets_dir() / "fonts" / "DejaVuSans.ttf"
    assert undrawable(latin, "Café, naïve — Zürich 🎉 你好 🎉") == "🎉你好"
    assert undrawable(latin, "Plain ASCII text: 100% (ok)!") == ""
    deck = tmp_path / "t.yaml"
    deck.write_text("title: T\nscenes:\n  - narration: Plain words only.\n"
                    "  - narration: We did it 🎉 and shipped.\n    slide: {title: 你好 world}\n")
    with pytest.raises(SystemExit) as e:
        main(["check", str(deck)])
    assert e.value.code in (0, None)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(lines) == 1 and "scenes[1]" in lines[0] and "theme.font_bold" in lines[0], err
    assert "🎉" in lines[0] and "你 好" in lines[0] and "scenes[0]" not in err
    deck.write_text(deck.read_text().replace("title: T", "title: T\ncaptions: {burn: false}"))
    main_err = _run_cli(["check", str(deck)], capsys)[1]
    assert "🎉" not in main_err and "你" in main_err          # not burned: only the slide's title is drawn


def test_the_warning_names_an_installed_font_that_has_the_characters(tmp_path, monkeypatch):
    """font_having() asks fontconfig (a stand-in `fc-list` here, listing the bundled fonts and one
    that is not a font file) for fonts with the characters, checks each with undrawable(), and
    prefers the style asked for; with no fc-list, or no font with any of them, it suggests nothing."""
    import os

    from avatar.compose import theme
    from avatar.resources import assets_dir

    fonts = assets_dir() / "fonts"
    fake = tmp_path / "bin" / "fc-list"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\ncase \"$1\" in *1f389*) exit 0;; esac\n"
                    f"echo '{fonts / 'DejaVuSans.ttf'}: :style=Book'\n"
                    f"echo '{fonts / 'DejaVuSans-Bold.ttf'}: :style=Bold'\n"
                    "echo '/usr/share/fonts/x/misc.pcf.gz: :style=Regular'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    theme.font_having.cache_clear()
    assert theme.font_having("ŋé", "bold") == (str(fonts / "DejaVuSans-Bold.ttf"), "")
    assert theme.font_having("ŋé", "regular") == (str(fonts / "DejaVuSans.ttf"), "")
    assert theme.font_having("🎉ŋ你", "bold") == (str(fonts / "DejaVuSans-Bold.ttf"), "🎉你")   # the best there is
    assert theme.font_having("🎉", "bold") is None                                          # in no font
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    theme.font_having.cache_clear()
    assert theme.font_having("ŋé", "bold") is None
    theme.font_having.cache_clear()


def test_metadata_marks_ai(rendered):
    from avatar.video import probe

    _, out, _, _ = rendered
    tags = probe(out)["tags"]
    assert "synthetic" in json.dumps(tags).lower()


def test_render_time_problems_fail_before_rendering(tmp_path, capsys):
    from PIL import Image

    Image.new("RGB", (200, 100), "white").save(tmp_path / "one.pdf")
    out = tmp_path / "o.mp4"
    cases = {
        "pdf.yaml": ("scenes:\n  - narration: hi\n  - slide: {layout: pdf, pdf: one.pdf, page: 3}\n    narration: hi\n",
                     ["scenes[1].slide", "page 3", "1 page"]),
        "font.yaml": ("theme: {name: default, font: nofont.ttf}\nscenes:\n  - narration: hi\n",
                      ["theme.font", "nofont.ttf"]),
        "theme.yaml": ("theme: nosuchtheme\nscenes:\n  - narration: hi\n", ["nosuchtheme"]),
        "ignored.yaml": ("scenes:\n  - narration: hi\n    slide: {layout: title, title: T, bullets: [a]}\n",
                         ["ignored.yaml:3", "scenes[0].slide", "does not show `bullets`"]),
    }
    for name, (text, needles) in cases.items():
        (tmp_path / name).write_text(text)
        code, err = _run_cli(["render", str(tmp_path / name), "-o", str(out), "--cache-dir", str(tmp_path / "c")], capsys)
        assert code == 2, (name, err)
        assert err.count("\n") == 1 and all(n in err for n in needles), (name, err)
        assert not out.exists()
        assert not list((tmp_path / "c" / "scenes").glob("*.mp4"))   # nothing was rendered
        code, err = _run_cli(["check", str(tmp_path / name)], capsys)   # `check` finds it too
        assert code == 2 and all(n in err for n in needles), (name, err)


def test_parallel_jobs_match_serial(rendered, monkeypatch):
    """Scene workers also hand each scene's audio over once its narration is made, and the joined
    track is encoded while they render: the join copies it, and the sound is the same."""
    from media import spy_concat

    from avatar.api import render
    from avatar.video import read_audio

    deck, out, first, tmp = rendered
    given = spy_concat(monkeypatch)
    par = render(deck, tmp / "parallel.mp4", cache_dir=tmp / "cache-par", jobs=2)
    assert par.rendered == 2 and par.frames == first.frames
    assert given[0] is not None and sum(given[0][1]) == par.frames   # made ahead, for these segments
    ser = render(deck, tmp / "serial-join.mp4", cache_dir=tmp / "cache-par", jobs=1)   # all cached: joined here
    assert ser.rendered == 0 and given[1] is None
    a, b = read_audio(tmp / "serial-join.mp4")[0], read_audio(tmp / "parallel.mp4")[0]
    assert a.shape == b.shape and np.array_equal(a, b)
    a, b = _frames(out), _frames(tmp / "parallel.mp4")
    assert a.shape == b.shape
    assert np.abs(a.astype(np.int16) - b.astype(np.int16)).mean() < 1.0   # same pictures (encoder noise aside)


def test_serial_render_with_narration_ahead_matches(rendered):
    """jobs=1 synthesises each scene's narration ahead in a thread: the same sound and pictures."""
    from avatar.api import render
    from avatar.video import read_audio

    deck, out, first, tmp = rendered
    ser = render(deck, tmp / "serial.mp4", cache_dir=tmp / "cache-ser", jobs=1)
    assert ser.rendered == 2 and ser.frames == first.frames
    a, b = read_audio(out)[0], read_audio(tmp / "serial.mp4")[0]
    assert a.shape == b.shape and np.array_equal(a, b)
    fa, fb = _frames(out), _frames(tmp / "serial.mp4")
    assert np.abs(fa.astype(np.int16) - fb.astype(np.int16)).mean() < 1.0


def test_narration_ahead_starts_the_next_scene_and_raises_in_order():
    import threading

    from avatar.build.run import NarrationAhead
    from avatar.errors import AvatarError

    started = {k: threading.Event() for k in "abc"}

    def make(plan):
        started[plan].set()
        if plan == "c":
            raise AvatarError("no voice")
        return plan.upper()

    ahead = NarrationAhead(["a", "b", "c"], make=make)
    try:
        assert not started["a"].wait(0.2)                 # nothing before the first take
        assert ahead.take(0) == "A"
        assert started["b"].wait(10)                      # the next one runs while scene 0 renders
        assert not started["c"].is_set()                  # only one ahead
        assert ahead.take(1) == "B" and started["c"].wait(10)
        with pytest.raises(AvatarError, match="no voice"):
            ahead.take(2)
    finally:
        ahead.close()


def test_audio_ahead_gives_up_past_its_memory_budget(tmp_path):
    """Scene audio is held in memory until the joined track is made: past the budget nothing is
    made ahead (the join makes the track, as without it), under it the track is made."""
    from types import SimpleNamespace

    from avatar.build.assemble import AudioAhead
    from avatar.build.scene import SceneInfo
    from avatar.video.mp4 import segment_audio

    plans = [SimpleNamespace(key="a"), SimpleNamespace(key="b")]
    info = SceneInfo(0.4, 10, 22050, "hi", [])
    track, frames = segment_audio(np.full(8820, 0.1, np.float32), 22050, 10, 25)
    small = AudioAhead(plans, 25, lambda infos: None)
    small.add("a", info, track, frames)
    assert small.result() is None                       # not every scene in yet
    small.add("b", info, track, frames)
    made = small.result()
    assert made is not None and made[1] == [frames, frames] and made[0]
    tight = AudioAhead(plans, 25, lambda infos: None)
    tight.MAX_BYTES = len(track) + 1
    tight.add("a", info, track, frames)
    tight.add("b", info, track, frames)
    assert tight.result() is None and not tight.got


def test_scene_workers_start_with_the_scene_modules_imported():
    """The forkserver imports what a scene needs once (avatar.build.forkserver_preload) and the
    workers fork from it; the preload skips a name that does not import, so each must exist.
    mediapipe stays out (only a worker measuring a new photo needs it). The forkserver ignores
    Ctrl-C during the preload: the worker's SIGINT is its own handler once started."""
    import importlib.util

    from avatar.build.run import SCENE_MODULES, worker_pool

    assert not [m for m in SCENE_MODULES if importlib.util.find_spec(m) is None]
    with worker_pool(1) as ex:   # a worker's first task: nothing of a scene has run in it yet
        seen = ex.submit(eval, "[m in __import__('sys').modules for m in "
                               "('avatar.renderers.warp', 'avatar.video.mp4', 'onnxruntime', 'mediapipe')]"
                               " + [__import__('signal').getsignal(2).__name__]").result()
    assert seen == [True, True, True, False, "_on_signal"]
