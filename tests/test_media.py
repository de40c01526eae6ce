"""Real media at assembly: loudness to a target, chapters, music beds ducked under the narration.

Test media is generated here (sine beds written with soundfile); outputs are decoded and
measured: loudness with FFmpeg's ebur128 (the system ffmpeg when there is one, else the
same filter in PyAV's bundled FFmpeg), chapters with PyAV (and ffprobe when present),
the music band's level during words against pauses.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from avatar.errors import AvatarError

DECK = """\
title: Media test
size: 160x90
fps: 10
transition: cut
captions: {{burn: false}}
avatar: {{layout: none}}
{music}
scenes:
  - slide: {{layout: title, title: Intro}}
    narration: "Hello there. [pause 1.6s] This is the first part."
  - slide: {{layout: bullets, title: Intro, bullets: [More]}}
    narration: "Still the intro."
  - slide: {{layout: bullets, title: Details, bullets: [One]}}
    narration: "Here are the details."
"""
TONE = 13000   # Hz: above everything the 22 kHz Piper voice can hold, below the AAC encoder's cutoff


def _bed(path: Path, freq: float = TONE, seconds: float = 3.0, amp: float = 0.3) -> Path:
    import soundfile as sf

    t = np.arange(int(seconds * 44100)) / 44100
    sf.write(str(path), (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32), 44100)
    return path


def _deck(tmp: Path, music: str = "") -> Path:
    p = tmp / "deck.yaml"
    p.write_text(DECK.format(music=music))
    return p


def ebur128(path: Path) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) of a file's audio by FFmpeg's ebur128 filter."""
    if shutil.which("ffmpeg"):
        err = subprocess.run(["ffmpeg", "-nostats", "-i", str(path), "-af", "ebur128=peak=true", "-f", "null", "-"],
                             capture_output=True, text=True).stderr
        summary = err[err.rindex("Summary:"):]
        i = float(summary.split("I:")[1].split("LUFS")[0])
        tp = float(summary.split("Peak:")[1].split("dBFS")[0])
        return i, tp
    from avatar.audio.filters import measure
    from avatar.video import read_audio

    m = measure(*read_audio(path))
    return m["I"], m["TP"]


def band_level(audio: np.ndarray, rate: int, freq: float, t0: float, t1: float) -> float:
    """dB of the `freq` +-200 Hz band between t0 and t1 seconds (mean power of 2048-sample windows)."""
    x = audio.mean(0)[int(t0 * rate):int(t1 * rate)]
    win = 2048
    frames = np.lib.stride_tricks.sliding_window_view(x, win)[::512]
    spec = np.abs(np.fft.rfft(frames * np.hanning(win), axis=1)) ** 2
    f = np.fft.rfftfreq(win, 1 / rate)
    return float(10 * np.log10(spec[:, abs(f - freq) < 200].sum(1).mean() + 1e-20))


# --------------------------------------------------------------------------- units
def test_duck_amount_follows_words_with_ramps():
    from avatar.audio.music import CONTROL, duck_amount

    d = duck_amount([(1.0, 2.0), (2.1, 2.5)], attack=0.2, release=0.5, seconds=5.0)
    at = lambda t: d[int(round(t * CONTROL))]   # noqa: E731
    assert at(0.5) == 0 and at(4.0) == 0                 # far from any word: the bed at full level
    assert at(1.0) == 1 and at(1.5) == 1 and at(2.05) == 1   # words and the short gap between them
    assert 0 < at(0.9) < 1 and 0 < at(2.75) < 1          # attack before, release after
    assert np.all(np.diff(d[int(0.7 * CONTROL):int(1.0 * CONTROL)]) >= 0)   # a smooth dip, no steps back
    assert duck_amount([], 0.2, 0.5, 1.0).max() == 0


def test_music_levels_parse_decibels_and_reject_bad_values():
    from pydantic import ValidationError

    from avatar.script.models import MusicSpec

    assert MusicSpec(file="a.mp3", volume="-20dB", duck="-6 dB").volume == -20
    with pytest.raises(ValidationError, match="not a level in decibels"):
        MusicSpec(file="a.mp3", volume="loud")
    with pytest.raises(ValidationError):
        MusicSpec(file="a.mp3", duck=6)      # ducking raises nothing


def test_normalize_reaches_target_under_the_ceiling():
    from avatar.audio.filters import measure
    from avatar.audio.loudness import normalize

    rng = np.random.default_rng(1)
    rate = 48000
    t = np.arange(rate * 6) / rate
    syllables = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) * (np.sin(2 * np.pi * 0.5 * t) > -0.3)
    x = (0.02 * rng.standard_normal(t.size) * syllables).astype(np.float32)[None]   # speech-like bursts
    for target in (-16.0, -23.0):
        y, report = normalize(x, rate, target, -1.0)
        m = measure(y, rate)
        assert abs(m["I"] - target) <= 0.2 and m["TP"] <= -1.0 + 1e-6, (target, m, report)
        assert y.shape == x.shape
    silent, report = normalize(np.zeros((1, rate), np.float32), rate)
    assert "skipped" in report and not silent.any()


def test_chapters_from_slide_titles():
    from avatar.script.models import Presentation
    from avatar.video.chapters import scene_chapters, to_pyav

    deck = Presentation(title="Talk", scenes=[{"narration": "a"}, {"slide": {"title": "One"}},
                                              {"slide": {"title": "One", "layout": "bullets"}},
                                              {"slide": {"title": "Two"}}])
    chs = scene_chapters(deck, [1.0, 2.0, 3.0, 4.0])
    assert [(c.lines[0], c.start, c.end) for c in chs] == [("Talk", 0, 1), ("One", 1, 6), ("Two", 6, 10)]
    assert to_pyav(chs)[1]["start"] == 1000 and to_pyav(chs)[1]["metadata"] == {"title": "One"}


# --------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def with_music(tmp_path_factory):
    from avatar.api import render
    from avatar.script import load

    tmp = tmp_path_factory.mktemp("media")
    _bed(tmp / "bed.wav")
    deck = load(_deck(tmp, "music: {file: bed.wav, volume: -10dB, duck: -14dB, fade: 0.3, attack: 0.1, "
                           "release: 0.3}\nloudness: -16"))
    out = tmp / "talk.mp4"
    result = render(deck, out, cache_dir=tmp / "cache")
    return tmp, deck, out, result


def _words(deck) -> list[tuple[float, float]]:
    """(start, end) of every spoken word on the video's timeline (Piper is deterministic)."""
    from avatar.speech.narrate import narrate_scene
    from avatar.types import Motion

    out, t = [], 0.0
    for scene in deck.scenes:
        speech = narrate_scene(deck, scene)
        out += [(t + w.start, t + w.end) for w in speech.words]
        t += Motion.frame_count(speech.duration, deck.fps) / deck.fps
    return out


def test_loudness_of_the_whole_video_is_on_target(with_music):
    _, _, out, _ = with_music
    integrated, peak = ebur128(out)
    assert abs(integrated - (-16.0)) <= 0.5
    assert peak <= -1.0 + 0.5   # the AAC encoder may add a fraction of a dB over the mix's -1 dBTP


def test_music_is_ducked_under_the_words(with_music):
    from avatar.video import read_audio

    _, deck, out, _ = with_music
    audio, rate = read_audio(out)
    words = _words(deck)
    # the 1.6 s pause in scene 1, away from the ramps (release 0.3 s, attack 0.1 s)
    gap = next((a[1], b[0]) for a, b in zip(words, words[1:]) if b[0] - a[1] > 1.2)
    pause = band_level(audio, rate, TONE, gap[0] + 0.5, gap[1] - 0.3)
    spoken = [band_level(audio, rate, TONE, s, e) for s, e in words if e - s > 0.25]
    assert len(spoken) >= 3 and pause - max(spoken) >= 10, (pause, spoken)   # set to duck 14 dB
    assert pause > band_level(audio, rate, 5000.0, gap[0] + 0.5, gap[1] - 0.3) + 20   # the bed is there


def test_chapters_in_the_mp4_and_the_vtt(with_music):
    import av
    import webvtt

    _, _, out, result = with_music
    with av.open(str(out)) as c:
        chs = c.chapters()
    assert [ch["metadata"]["title"] for ch in chs] == ["Intro", "Details"]
    assert chs[0]["start"] == 0 and chs[0]["end"] == chs[1]["start"]
    assert abs(chs[1]["end"] * float(chs[1]["time_base"]) - result.duration) < 0.15
    if shutil.which("ffprobe"):
        probe = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_chapters", "-of", "json", str(out)],
                                          capture_output=True, text=True, check=True).stdout)
        assert [c["tags"]["title"] for c in probe["chapters"]] == ["Intro", "Details"]
    vtt = webvtt.read(str(out.with_suffix(".chapters.vtt")))
    assert [c.text for c in vtt] == ["Intro", "Details"]


def test_a_changed_bed_re_renders_no_scene(with_music):
    from avatar.api import render
    from avatar.script import load
    from avatar.video import read_audio

    tmp, _, _, first = with_music
    _bed(tmp / "bed.wav", freq=9000)     # same name, new content
    out = tmp / "again.mp4"
    result = render(load(tmp / "deck.yaml"), out, cache_dir=tmp / "cache")
    assert result.rendered == 0 and result.scenes == first.scenes
    audio, rate = read_audio(out)
    assert band_level(audio, rate, 9000, 0.5, 2.0) > band_level(audio, rate, TONE, 0.5, 2.0) + 20


# --------------------------------------------------------------------------- errors
def test_bad_music_files_are_one_line_errors(tmp_path):
    from avatar.api import plan
    from avatar.script import load

    with pytest.raises(AvatarError, match=r"music.file: music file not found: .*nope.mp3"):
        plan(load(_deck(tmp_path, "music: {file: nope.mp3}")))
    (tmp_path / "text.mp3").write_text("not audio")
    with pytest.raises(AvatarError, match=r"music.file: .*text.mp3: not an audio file") as e:
        plan(load(_deck(tmp_path, "music: {file: text.mp3}")))
    assert "\n" not in str(e.value)
    with pytest.raises(AvatarError, match=r"deck.yaml:7: music.volume: 'quiet' is not a level in decibels"):
        load(_deck(tmp_path, "music: {file: text.mp3, volume: quiet}"))


def test_cli_loudness_option(tmp_path, capsys):
    from avatar.api import apply_options
    from avatar.cli import main
    from avatar.script import load

    deck = load(_deck(tmp_path))
    assert apply_options(deck, loudness="-14").loudness == -14
    assert apply_options(deck, loudness="off").loudness is None
    with pytest.raises(SystemExit) as e:
        main(["render", str(_deck(tmp_path)), "-o", str(tmp_path / "x.mp4"), "--loudness", "loud"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("error: --loudness:") and err.count("\n") == 1
    assert not (tmp_path / "x.mp4").exists()
