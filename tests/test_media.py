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
    from media import measure
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


def test_bed_loops_or_stops_faded_and_runs_follow_scene_settings():
    from avatar.audio.music import RATE, Run, bed_track
    from avatar.build.finish import music_runs
    from avatar.build.scene import SceneInfo
    from avatar.script.models import MusicSpec, Presentation

    bed = np.ones((2, RATE), np.float32)   # 1 s of a constant level
    looped = bed_track(Run(MusicSpec(file="b.wav", volume=0, duck=0, fade=0.2), 0.0, 3.0, []), bed)
    assert looped.shape == (2, 3 * RATE) and looped[0, int(1.5 * RATE)] == pytest.approx(1.0)
    assert looped[0, 0] < 0.01 and looped[0, -1] < 0.01            # faded in and out
    once = bed_track(Run(MusicSpec(file="b.wav", volume=-6, duck=0, fade=0.2, loop=False), 0.0, 3.0, []), bed)
    assert once[0, int(0.5 * RATE)] == pytest.approx(10 ** (-6 / 20), rel=1e-3)
    assert once[0, RATE - 10] < 0.05 and not once[:, RATE:].any()  # stops at the bed's end, faded
    deck = Presentation(music={"file": "a.wav"}, scenes=[
        {"narration": "a"}, {"narration": "b"}, {"narration": "c", "music": False},
        {"narration": "d", "music": {"file": "b.wav"}}])
    infos = [SceneInfo(d, int(d * 10), 16000, "", [("w", 0.1, 0.5)]) for d in (1.0, 2.0, 1.0, 1.5)]
    runs = music_runs(deck, infos)
    assert [(r.spec.file.name, r.start, r.end) for r in runs] == [("a.wav", 0, 3.0), ("b.wav", 4.0, 5.5)]
    assert runs[0].words == [(0.1, 0.5), (1.1, 1.5)]   # on the video's timeline


def test_music_levels_parse_decibels_and_reject_bad_values():
    from pydantic import ValidationError

    from avatar.script.models import MusicSpec

    assert MusicSpec(file="a.mp3", volume="-20dB", duck="-6 dB").volume == -20
    with pytest.raises(ValidationError, match="not a level in decibels"):
        MusicSpec(file="a.mp3", volume="loud")
    with pytest.raises(ValidationError):
        MusicSpec(file="a.mp3", duck=6)      # ducking raises nothing


def test_normalize_reaches_target_under_the_ceiling():
    from media import measure
    from avatar.audio.loudness import normalize

    rng = np.random.default_rng(1)
    rate = 48000
    t = np.arange(rate * 6) / rate
    syllables = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) * (np.sin(2 * np.pi * 0.5 * t) > -0.3)
    x = (0.02 * rng.standard_normal(t.size) * syllables).astype(np.float32)[None]   # speech-like bursts
    for target in (-16.0, -23.0):
        y, report = normalize(x, rate, target, -1.0)
        m = measure(y, rate)
        assert abs(m["I"] - target) <= 0.2 and m["TP"] <= -1.5 + 0.05, (target, m, report)
        assert y.shape == x.shape
    silent, report = normalize(np.zeros((1, rate), np.float32), rate)
    assert "skipped" in report and not silent.any()


def _speech_like(seconds: float, rate: int = 48000, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    syllables = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) * (np.sin(2 * np.pi * 0.5 * t) > -0.3)
    x = (0.02 * rng.standard_normal(t.size) * syllables).astype(np.float32)[None]
    x[0, rate * 7 + 123] = 0.5    # a click: the gain that reaches -16 LUFS pushes it over the ceiling
    return x


def test_meter_agrees_with_ffmpeg_ebur128_in_any_blocks():
    from media import measure
    from avatar.audio.meter import Meter, integrated

    rate = 48000
    for x in (_speech_like(12.0), np.repeat(_speech_like(12.0, seed=2), 2, axis=0) * [[1.0], [0.3]]):
        x = x.astype(np.float32)
        ref = measure(x, rate)
        whole, blocked = Meter(rate), Meter(rate)
        whole.push(x)
        for i in range(0, x.shape[1], 4999):
            blocked.push(x[:, i:i + 4999])
        (e1, p1), (e2, p2) = whole.result(), blocked.result()
        assert np.allclose(e1, e2, rtol=1e-9) and np.array_equal(p1, p2)   # filter states carry across blocks
        assert abs(integrated(e1, whole.step) - ref["I"]) <= 0.05, (integrated(e1, whole.step), ref)
        assert abs(20 * np.log10(p1.max()) - ref["TP"]) <= 0.3, (20 * np.log10(p1.max()), ref)
    assert integrated(np.zeros(100), 240) == float("-inf") and integrated(np.ones(10), 240) == float("-inf")


def test_streamed_final_mix_matches_the_mix_in_memory(tmp_path):
    """A 2-minute track with a bed, mixed block by block as assembly does, is the in-memory mix;
    it lands on the target (by ffmpeg's meter) with its true peak under the ceiling."""
    from avatar.audio.blocks import Reader, blocks_of
    from media import measure
    from avatar.audio.loudness import loudness_stream, normalize
    from avatar.audio.music import Run, mix_music, music_stream
    from avatar.script.models import MusicSpec

    rate = 48000
    x = np.concatenate([_speech_like(60.0), _speech_like(60.0, seed=3)], axis=1)
    bed = _bed(tmp_path / "bed.wav", freq=440, seconds=7.0, amp=0.2)
    runs = [Run(MusicSpec(file=str(bed), volume=-12, duck=-10, fade=1.0), 5.0, 100.0,
                [(t, t + 0.2) for t in np.arange(5.0, 100.0, 0.5)])]
    in_memory, report = normalize(mix_music(x, runs, tmp_path / "cache", rate), rate, -16.0, -1.0)
    assert report["limited"]
    parts = lambda: iter([x[:, i:i + 7919] for i in range(0, x.shape[1], 7919)])   # noqa: E731  odd blocks
    mixed = lambda: music_stream(blocks_of(parts(), rate), runs, tmp_path / "cache", rate)   # noqa: E731
    reader = Reader(loudness_stream(mixed, rate, -16.0, -1.0))
    streamed = np.concatenate([reader.take(n) for n in (1, 33333, 10 ** 7)], axis=1)[:, :x.shape[1]]
    assert reader.channels == 2 and streamed.shape == in_memory.shape
    assert np.abs(streamed - in_memory).max() <= 1e-5
    m = measure(streamed, rate)
    assert abs(m["I"] - (-16.0)) <= 0.2 and m["TP"] <= -1.5 + 0.05, m


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


def test_the_mix_made_while_scenes_render_equals_the_mix_made_at_the_join(with_music, monkeypatch):
    """The parallel render mixed (bed, ducking, loudness) and encoded the track before its last
    scene was done; joining the cached scenes again, in one process, mixes at the join: the
    same sound."""
    from media import spy_concat

    from avatar.api import render
    from avatar.video import read_audio

    tmp, deck, out, result = with_music
    assert result.rendered == 3
    given = spy_concat(monkeypatch)
    again = render(deck, tmp / "again.mp4", cache_dir=tmp / "cache", jobs=1)
    assert again.rendered == 0 and given == [None]
    a, b = read_audio(out)[0], read_audio(tmp / "again.mp4")[0]
    assert a.shape == b.shape and np.array_equal(a, b)


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
    # the mix is held at -1.5 dBTP; AAC encoding adds an unpredictable 0-2 dB (avatar.audio.loudness)
    assert peak <= 0.5


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


# --------------------------------------------------------------------------- video slides
CLIP_FPS = 20


def _clip_color(k: int) -> np.ndarray:
    """The solid colour of clip frame k (distinct for the first 60 frames)."""
    return np.array([(k * 37) % 200 + 30, (k * 91) % 200 + 30, (255 - k * 4) % 256], np.float32)


def _clip(path: Path, frames: int = 60, size=(96, 64), tone: float | None = 880.0) -> Path:
    """A tiny clip: frame k is one solid colour, _clip_color(k); with a sine tone as its sound."""
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=CLIP_FPS)
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
        s.codec_context.options = {"crf": "10", "g": "10"}
        a = c.add_stream("aac", rate=48000, layout="mono") if tone else None
        for k in range(frames):
            img = np.broadcast_to(_clip_color(k).astype(np.uint8), (size[1], size[0], 3)).copy()
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = k
            c.mux(s.encode(f))
        c.mux(s.encode(None))
        if a is not None:
            t = np.arange(int(frames / CLIP_FPS * 48000)) / 48000
            x = (0.3 * np.sin(2 * np.pi * tone * t)).astype(np.float32)
            for j in range(0, x.size, 1024):
                af = av.AudioFrame.from_ndarray(x[None, j:j + 1024].copy(), format="flt", layout="mono")
                af.sample_rate, af.pts = 48000, j
                c.mux(a.encode(af))
            c.mux(a.encode(None))
    return path


VIDEO_DECK = """\
title: Video slide
size: 160x90
fps: 10
transition: cut
loudness: null
captions: {{burn: false}}
avatar: {{layout: none}}
scenes:
  - slide: {{layout: video, video: clip.mp4, start: {start}, end: {end}, fit: cover, audio: {audio}, loop: {loop}}}
    narration: "{narration}"
    {duration}
"""


def _video_deck(tmp: Path, start=0.5, end=2.0, audio="mute", loop="false", narration="", duration="") -> Path:
    p = tmp / "video.yaml"
    p.write_text(VIDEO_DECK.format(start=start, end=end, audio=audio, loop=loop, narration=narration,
                                   duration=duration))
    return p


def test_video_slide_frames_come_from_the_clip(tmp_path):
    from avatar.api import render
    from avatar.script import load
    from avatar.video import probe, read_audio, read_frames

    _clip(tmp_path / "clip.mp4")
    out = tmp_path / "v.mp4"
    render(load(_video_deck(tmp_path, audio="mix")), out, cache_dir=tmp_path / "cache")
    info = probe(out)
    assert info["frames"] == 15   # no narration: the clip's span, 2.0 - 0.5 s at 10 fps
    for i, f in enumerate(read_frames(out)):
        k = int((0.5 + i / 10) * CLIP_FPS + 1e-6)   # the clip frame showing at output time i / 10
        mean = f[20:70, 30:130].reshape(-1, 3).mean(0)   # inside the content box (cover fills it)
        assert np.abs(mean - _clip_color(k)).max() < 12, (i, k, mean, _clip_color(k))
    audio, rate = read_audio(out)
    assert band_level(audio, rate, 880.0, 0.2, 1.3) > band_level(audio, rate, 3000.0, 0.2, 1.3) + 20  # its sound


def test_video_slide_holds_or_loops_past_the_clip(tmp_path):
    from avatar.compose.video_slide import ClipFrames

    clip = _clip(tmp_path / "clip.mp4", frames=20, tone=None)   # 1 s at 20 fps
    for loop, expect in ((False, [19, 19, 19]), (True, [0, 4, 8])):   # clip frames at 1.0, 1.2 and 1.4 s
        frames = ClipFrames(clip, 0.0, 1.0, 10, (0, 0, 96, 64), "contain", loop, (96, 64))
        got = [next(frames._frames) for _ in range(15)][10::2]
        for f, k in zip(got, expect):
            assert np.abs(f.reshape(-1, 3).mean(0) - _clip_color(k)).max() < 12, (loop, k)


def test_video_slide_fit_contain_and_cover(tmp_path):
    from avatar.compose.video_slide import ClipFrames

    clip = _clip(tmp_path / "clip.mp4", frames=4, size=(96, 48), tone=None)   # 2:1
    out = np.zeros((100, 100, 3), np.uint8)
    ClipFrames(clip, 0.0, 0.2, 10, (0, 0, 100, 100), "contain", False, (100, 100)).paste(out)
    rows = np.flatnonzero(out.any(axis=(1, 2)))
    assert (rows[0], rows[-1]) == (25, 74) and out[:, 0].any() and out[:, 99].any()   # letterboxed, full width
    out[:] = 0
    ClipFrames(clip, 0.0, 0.2, 10, (0, 0, 100, 100), "cover", False, (100, 100)).paste(out)
    assert out.all(axis=2).all()   # the box is filled


def test_video_slide_scene_lasts_the_narration_when_asked(tmp_path):
    from avatar.api import render
    from avatar.script import load
    from avatar.speech.narrate import narrate_scene
    from avatar.video import probe

    _clip(tmp_path / "clip.mp4", tone=None)
    deck = load(_video_deck(tmp_path, start=0, end=3.0, narration="Short.", duration="duration: narration"))
    out = tmp_path / "n.mp4"
    render(deck, out, cache_dir=tmp_path / "cache")
    speech = narrate_scene(deck, deck.scenes[0])
    assert speech.duration < 2.0 and abs(probe(out)["video_duration"] - speech.duration) <= 0.1


def test_bad_video_slides_are_one_line_errors(tmp_path):
    from avatar.api import plan
    from avatar.script import load

    with pytest.raises(AvatarError, match=r"video.yaml:\d+: scenes\[0\].slide.video: file not found"):
        load(_video_deck(tmp_path))
    _clip(tmp_path / "clip.mp4", frames=20, tone=None)
    with pytest.raises(AvatarError, match=r"scenes\[0\].slide.start: start 5 s is past the end of the clip"):
        plan(load(_video_deck(tmp_path, start=5, end=6)))
    with pytest.raises(AvatarError, match=r"end \(1 s\) must come after start \(2 s\)"):
        load(_video_deck(tmp_path, start=2, end=1))
    (tmp_path / "clip.mp4").write_text("not a video")
    with pytest.raises(AvatarError, match=r"scenes\[0\].slide.video: .*clip.mp4: not a video PyAV can decode") as e:
        plan(load(_video_deck(tmp_path)))
    assert "\n" not in str(e.value)
    p = tmp_path / "novideo.yaml"
    p.write_text("scenes:\n  - slide: {layout: video}\n    narration: hi\n")
    with pytest.raises(AvatarError, match=r"novideo.yaml:2: scenes\[0\].slide: a video slide needs `video: FILE`"):
        load(p)


# --------------------------------------------------------------------------- transparent presenter
def _alpha_checks(path: Path, frames: int | None = None):
    """Alpha present; the photo's background (its top corners) transparent, the face opaque."""
    from avatar.face import load_identity
    from avatar.resources import default_photo
    from avatar.video.alpha import read_rgba

    rgba = list(read_rgba(path))
    assert rgba and rgba[0].shape[2] == 4
    if frames is not None:
        assert abs(len(rgba) - frames) <= 1
    ident = load_identity(default_photo())
    h, w = ident.image.shape[:2]
    for f in rgba[::max(1, len(rgba) // 4)]:
        sy, sx = f.shape[0] / h, f.shape[1] / w
        a, b, c, d = ident.face_box
        face = f[int((b + d) / 2 * sy), int((a + c) / 2 * sx), 3]
        top = int(0.04 * f.shape[0])
        corners = [f[top, int(0.04 * f.shape[1]), 3], f[top, int(0.96 * f.shape[1]), 3]]
        assert face >= 245 and max(corners) <= 10, (face, corners)
        assert 0.2 < (f[..., 3] < 10).mean() < 0.8   # a real share of the picture is see-through
    return rgba


@pytest.mark.parametrize("suffix,pix", [(".webm", "yuva420p"), (".mov", "yuva444p")])
def test_say_transparent_writes_alpha(tmp_path, suffix, pix):
    import av

    from avatar.api import say

    out = tmp_path / f"clip{suffix}"
    result = say("Hi there.", out=out, size=160, fps=10, transparent=True)
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        if suffix == ".webm":
            assert s.metadata.get("alpha_mode") == "1" and s.codec_context.name == "vp9"
        else:
            assert s.codec_context.name == "prores" and s.codec_context.pix_fmt.startswith(pix)
        assert c.streams.audio
    _alpha_checks(out, result.frames)


def test_matting_is_smoothed_over_time():
    from avatar.video.alpha import Matting

    class Flicker:   # a segmentation that flips a region between person and not, frame to frame
        def __init__(self):
            self.i = 0

        def process(self, frame):
            self.i += 1
            m = np.zeros(frame.shape[:2], np.float32)
            m[:, :40] = 1.0
            m[:, 40:60] = self.i % 2
            return type("R", (), {"segmentation_mask": m})()

    matte = Matting(smooth=0.5)
    matte.seg = Flicker()
    alphas = [matte.alpha(np.zeros((32, 80, 3), np.uint8)) for _ in range(8)]
    swing = [abs(float(a[:, 50].mean()) - float(b[:, 50].mean())) for a, b in zip(alphas[3:], alphas[4:])]
    assert max(swing) < 0.5                                   # unsmoothed, it would swing 0 <-> 1
    assert all(a[:, 5].min() > 0.99 and a[:, 75].max() < 0.01 for a in alphas[1:])   # steady parts stay put


def test_presenter_track_and_alpha_errors(tmp_path, capsys):
    from avatar.api import render
    from avatar.cli import main
    from avatar.script import load
    from avatar.video import probe

    deck = tmp_path / "deck.yaml"
    deck.write_text("size: 160x90\nfps: 10\nloudness: null\navatar: {layout: none}\ncaptions: {burn: false}\n"
                    "scenes:\n  - slide: {title: One}\n    narration: Hello.\n  - slide: {title: Two}\n"
                    "    narration: Bye.\n")
    out, track = tmp_path / "talk.mp4", tmp_path / "presenter.webm"
    render(load(deck), out, cache_dir=tmp_path / "cache", presenter_track=track)
    _alpha_checks(track, probe(out)["frames"])
    for args in (["say", "hi", "--transparent", "-o", str(tmp_path / "x.mp4")],
                 ["render", str(deck), "-o", str(tmp_path / "y.mp4"), "--presenter-track", str(tmp_path / "p.mp4")]):
        with pytest.raises(SystemExit) as e:
            main(args)
        err = capsys.readouterr().err
        assert e.value.code == 2 and err.count("\n") == 1 and ".webm (VP9 with alpha) or .mov" in err
    assert not (tmp_path / "x.mp4").exists() and not (tmp_path / "y.mp4").exists()


# --------------------------------------------------------------------------- backdrop behind the presenter
BG_DECK = """\
size: 160x160
fps: 10
loudness: null
transition: cut
captions: {{burn: false}}
avatar: {{layout: full, still: true, background: {background}}}
scenes:
  - narration: Hi.
"""


def test_colour_and_image_backgrounds_behind_a_full_presenter(tmp_path):
    from PIL import Image

    from avatar.api import render
    from avatar.script import load
    from avatar.video import read_frames

    Image.new("RGB", (64, 64), (20, 180, 60)).save(tmp_path / "office.png")
    for background, rgb in (('{color: "#c81e1e"}', (200, 30, 30)), ("{image: office.png}", (20, 180, 60))):
        (tmp_path / "bg.yaml").write_text(BG_DECK.format(background=background))
        out = tmp_path / "bg.mp4"
        render(load(tmp_path / "bg.yaml"), out, cache_dir=tmp_path / "cache")
        f = next(read_frames(out)).astype(int)
        corners = [f[4:14, 4:14], f[4:14, -14:-4]]          # the photo's background, replaced
        for c in corners:
            assert np.abs(c.reshape(-1, 3).mean(0) - rgb).max() < 12, (background, c.reshape(-1, 3).mean(0))
        assert np.abs(f[60:90, 70:90].reshape(-1, 3).mean(0) - rgb).max() > 40   # the face is still there


def test_bad_backgrounds_are_one_line_errors(tmp_path):
    from avatar.api import plan
    from avatar.script import load

    p = tmp_path / "bg.yaml"
    p.write_text(BG_DECK.format(background='{color: "#000000", image: a.png}'))
    with pytest.raises(AvatarError, match=r"bg.yaml:6: avatar.background: give the background either"):
        load(p)
    p.write_text(BG_DECK.format(background="remov"))
    with pytest.raises(AvatarError, match=r"bg.yaml:6: avatar.background: unknown value 'remov' \(did you mean"):
        load(p)
    p.write_text(BG_DECK.format(background="{image: nope.jpg}"))
    with pytest.raises(AvatarError, match=r"avatar.background.image: image not found: .*nope.jpg"):
        plan(load(p))
    p.write_text(BG_DECK.format(background='{color: "not-a-colour"}'))
    with pytest.raises(AvatarError, match=r"avatar.background: .*not-a-colour") as e:
        plan(load(p))
    assert "\n" not in str(e.value)
