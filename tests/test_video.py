"""avatar.video: real H.264/AAC encoding of a few tiny frames, checked with PyAV's decoder."""
from __future__ import annotations

import time
from fractions import Fraction

import numpy as np
import pytest

from avatar.video import AUDIO_RATE, concat_mp4, probe, read_audio, read_frames, write_mp4

FPS = 25


def frames(n, size=(96, 64), color=0):
    w, h = size
    for i in range(n):
        f = np.zeros((h, w, 3), np.uint8)
        f[..., color] = min(255, 10 * i)
        yield f


def tone(seconds, rate=22050, freq=440.0):
    t = np.arange(int(round(seconds * rate))) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_write_mp4_codecs_sizes_tags_faststart(tmp_path):
    out = write_mp4(tmp_path / "a.mp4", frames(25), fps=FPS, audio=tone(1.0), sample_rate=22050,
                    metadata={"title": "Demo", "comment": "AI-generated", "ai_generated": "true"})
    info = probe(out)
    assert (info["video_codec"], info["audio_codec"]) == ("h264", "aac")
    assert info["pix_fmt"] == "yuv420p"
    assert (info["width"], info["height"]) == (96, 64)
    assert info["frames"] == 25 and info["fps"] == pytest.approx(FPS)
    assert info["sample_rate"] == AUDIO_RATE and info["channels"] == 1
    assert abs(info["audio_duration"] - info["video_duration"]) <= 1 / FPS
    assert info["tags"]["title"] == "Demo"
    assert info["tags"]["comment"] == "AI-generated"
    assert info["tags"]["ai_generated"] == "true"
    assert info["faststart"] is True
    data = out.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")
    assert not [p for p in tmp_path.iterdir() if p.name != "a.mp4"]   # no temp file left


def test_frames_round_trip(tmp_path):
    src = list(frames(10, color=1))
    out = write_mp4(tmp_path / "f.mp4", iter(src), fps=FPS)
    back = list(read_frames(out))
    assert len(back) == 10
    for a, b in zip(src, back):
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 4
    assert "audio_codec" in probe(out) and probe(out)["audio_codec"] is None


def test_audio_longer_holds_last_frame_and_shorter_is_padded(tmp_path):
    long = probe(write_mp4(tmp_path / "long.mp4", frames(10), fps=FPS, audio=tone(1.0), sample_rate=22050))
    assert long["frames"] == 25                      # frames added to cover the audio
    assert abs(long["audio_duration"] - 1.0) <= 1 / FPS
    short = probe(write_mp4(tmp_path / "short.mp4", frames(50), fps=FPS, audio=tone(0.5), sample_rate=22050))
    assert short["frames"] == 50
    assert abs(short["audio_duration"] - 2.0) <= 1 / FPS   # padded with silence
    audio, rate = read_audio(tmp_path / "short.mp4")
    assert np.abs(audio[:, : rate // 4]).max() > 0.3          # the tone is there
    assert np.abs(audio[:, int(1.2 * rate):int(1.9 * rate)]).max() < 0.01   # then silence


def test_stereo_int16_audio(tmp_path):
    a = (tone(0.4, 16000)[:, None] * np.array([1.0, 0.5]) * 32767).astype(np.int16)
    info = probe(write_mp4(tmp_path / "s.mp4", frames(10), fps=FPS, audio=a, sample_rate=16000))
    assert info["channels"] == 2 and info["sample_rate"] == AUDIO_RATE


def test_odd_size_is_evened(tmp_path):
    info = probe(write_mp4(tmp_path / "odd.mp4", frames(3, size=(97, 65)), fps=FPS))
    assert (info["width"], info["height"]) == (96, 64)


def test_bad_frames_rejected(tmp_path):
    with pytest.raises(ValueError):
        write_mp4(tmp_path / "x.mp4", [np.zeros((8, 8), np.uint8)], fps=FPS)
    with pytest.raises(ValueError):
        write_mp4(tmp_path / "y.mp4", [], fps=FPS)
    assert not list(tmp_path.iterdir())


def test_atomic_on_error(tmp_path):
    def broken():
        yield from frames(5)
        raise RuntimeError("renderer crashed")

    target = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError):
        write_mp4(target, broken(), fps=FPS, audio=tone(1.0), sample_rate=22050)
    assert not list(tmp_path.iterdir())


def test_atomic_keeps_previous_file_on_error(tmp_path):
    target = write_mp4(tmp_path / "out.mp4", frames(5), fps=FPS)
    before = target.read_bytes()

    def broken():
        yield from frames(3)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_mp4(target, broken(), fps=FPS)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_progress_called(tmp_path):
    seen = []
    write_mp4(tmp_path / "p.mp4", frames(7), fps=FPS, progress=seen.append)
    assert seen == list(range(1, 8))


def test_concat_copies_video_and_joins_audio(tmp_path):
    a = write_mp4(tmp_path / "a.mp4", frames(20, color=0), fps=FPS, audio=tone(0.8), sample_rate=22050)
    b = write_mp4(tmp_path / "b.mp4", frames(30, color=1), fps=FPS, audio=tone(1.2, freq=880), sample_rate=22050)
    out = concat_mp4([a, b], tmp_path / "ab.mp4", metadata={"title": "Joined"})
    info = probe(out)
    assert info["frames"] == 50
    assert abs(info["audio_duration"] - 2.0) <= 1 / FPS
    assert info["tags"]["title"] == "Joined" and info["faststart"]
    back = list(read_frames(out))
    assert len(back) == 50
    assert back[5][..., 0].mean() > back[5][..., 1].mean() + 20      # segment a: red ramp
    assert back[45][..., 1].mean() > back[45][..., 0].mean() + 100   # segment b: green ramp
    # the H.264 packets are the segments' own (copied, not re-encoded)
    import av

    def payloads(p):
        with av.open(str(p)) as c:
            return [bytes(k) for k in c.demux(video=0) if k.size]
    assert payloads(out) == payloads(a) + payloads(b)
    # the audio follows the segments: 440 Hz then 880 Hz
    audio, rate = read_audio(out)
    def peak_hz(x):
        spec = np.abs(np.fft.rfft(x))
        return np.argmax(spec) * rate / len(x)
    assert abs(peak_hz(audio[0, int(0.2 * rate):int(0.6 * rate)]) - 440) < 10
    assert abs(peak_hz(audio[0, int(1.2 * rate):int(1.6 * rate)]) - 880) < 10


def test_flac_segments_join_into_one_aac_track_sample_exact(tmp_path):
    """Scene segments carry lossless FLAC: the joined AAC track is the only lossy encoding."""
    import av

    from avatar.video.mp4 import _AudioStream

    sr = 22050
    x = tone(0.8, sr) * 0.5
    a = write_mp4(tmp_path / "a.mp4", frames(20), fps=FPS, audio=x, sample_rate=sr, audio_codec="flac")
    with av.open(str(a)) as c:
        assert c.streams.audio[0].codec_context.name == "flac"
    lossless, rate = read_audio(a)
    lossy, _ = read_audio(write_mp4(tmp_path / "r.mp4", frames(20), fps=FPS, audio=x, sample_rate=sr))
    fed = _AudioStream(x, sr, rate).read(lossless.shape[1])    # the track as the encoder received it
    # FLAC keeps it to 16-bit precision; AAC does not
    assert np.abs(lossless - fed).max() < 2 / 32768
    assert np.abs(lossy[:, :fed.shape[1]] - fed[:, :lossy.shape[1]]).max() > 100 / 32768
    out = concat_mp4([a, a], tmp_path / "aa.mp4")
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "aac"
    joined, _ = read_audio(out)
    k = int(0.3 * rate)
    assert np.corrcoef(joined[0, k:k + 4000], lossless[0, k:k + 4000])[0, 1] > 0.99


def test_concat_reencodes_different_sizes(tmp_path):
    a = write_mp4(tmp_path / "a.mp4", frames(5, size=(96, 64)), fps=FPS)
    b = write_mp4(tmp_path / "b.mp4", frames(5, size=(64, 48)), fps=FPS)
    info = probe(concat_mp4([a, b], tmp_path / "ab.mp4"))
    assert info["frames"] == 10 and (info["width"], info["height"]) == (96, 64)


def test_concat_segment_without_audio_gets_silence(tmp_path):
    a = write_mp4(tmp_path / "a.mp4", frames(10), fps=FPS, audio=tone(0.4), sample_rate=22050)
    b = write_mp4(tmp_path / "b.mp4", frames(15), fps=FPS)     # a silent scene
    out = concat_mp4([a, b], tmp_path / "ab.mp4")
    info = probe(out)
    assert info["frames"] == 25 and abs(info["audio_duration"] - 1.0) <= 1 / FPS
    audio, rate = read_audio(out)
    assert np.abs(audio[:, int(0.1 * rate):int(0.3 * rate)]).max() > 0.3
    assert np.abs(audio[:, int(0.5 * rate):int(0.95 * rate)]).max() < 0.01


def test_concat_keeps_audio_in_sync_at_every_join(tmp_path):
    sr = 22050
    segs = []
    for k in range(3):
        a = np.zeros(int(sr * 0.52), np.float32)        # 13 frames; the tone starts 0.2 s into each scene
        a[int(sr * 0.2):] = tone(0.52 - 0.2, sr)[: len(a) - int(sr * 0.2)]
        segs.append(write_mp4(tmp_path / f"s{k}.mp4", frames(13), fps=FPS, audio=a, sample_rate=sr))
    audio, rate = read_audio(concat_mp4(segs, tmp_path / "all.mp4"))
    loud = np.abs(audio[0]) > 0.1
    onsets = [i / rate for i in range(1, len(loud)) if loud[i] and not loud[max(0, i - 400):i].any()]
    assert onsets == pytest.approx([0.2, 0.72, 1.24], abs=0.003)


def test_write_mp4_forces_requested_keyframes(tmp_path):
    import av

    out = tmp_path / "k.mp4"
    frames = (np.full((64, 64, 3), 40 + 4 * i, np.uint8) for i in range(20))
    write_mp4(out, frames, fps=10, keyframes=(7,))
    with av.open(str(out)) as c:
        keys = [f.key_frame for f in c.decode(video=0)]
    assert len(keys) == 20 and keys[0] and keys[7]
    assert not any(keys[1:7])   # only where asked (and the first frame)


def test_frames_made_ahead_give_the_same_stream(tmp_path):
    """write_mp4 draws frames in a helper thread while x264 encodes: same packets as drawing them one by one."""
    def varied(n):
        rng = np.random.default_rng(0)
        base = rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)
        for i in range(n):
            yield np.roll(base, 3 * i, axis=1)

    a = write_mp4(tmp_path / "a.mp4", varied(30), fps=FPS, audio=tone(1.2), sample_rate=22050, ahead=0)
    b = write_mp4(tmp_path / "b.mp4", varied(30), fps=FPS, audio=tone(1.2), sample_rate=22050, ahead=4)
    assert a.read_bytes() == b.read_bytes()
    assert np.array_equal(np.stack(list(read_frames(b))), np.stack(list(read_frames(a))))


def test_frames_ahead_are_bounded_and_in_order():
    from avatar.video.mp4 import _ahead

    made = []

    def counted():
        for i in range(10):
            made.append(i)
            yield i

    it = _ahead(counted(), 3)
    assert next(it) == 0
    time.sleep(0.05)
    assert len(made) <= 1 + 3                   # the one handed out and at most 3 ahead
    assert list(it) == list(range(1, 10))


@pytest.mark.parametrize("seconds,sr,stereo,n", [(0.8, 22050, False, 20), (0.5, 48000, False, 20),   # shorter: padded
                                                 (1.3, 16000, True, 20)])                          # longer: more frames
def test_segment_audio_made_ahead_is_the_segments_own_track(tmp_path, seconds, sr, stereo, n):
    """What a scene worker publishes once its narration is made decodes to exactly the samples
    of the segment it then writes, and says how many frames that segment gets."""
    from avatar.video.mp4 import segment_audio

    x = tone(seconds, sr) * 0.5
    if stereo:
        x = np.stack([x, -0.5 * x], axis=1)
    track, count = segment_audio(x, sr, n, FPS)
    seg = write_mp4(tmp_path / "s.mp4", frames(n), fps=FPS, audio=x, sample_rate=sr, audio_codec="flac")
    assert count == probe(seg)["frames"] == max(n, int(round(seconds * FPS)))
    mine, theirs = read_audio(track)[0], read_audio(seg)[0]
    assert mine.shape == theirs.shape and np.array_equal(mine, theirs)


def test_concat_with_the_audio_made_ahead_writes_the_same_file_contents(tmp_path):
    """The joined track encoded beforehand (while scenes render) gives the very packets the join
    would have encoded; made for other frame counts, it is made again from the segments."""
    import av

    from avatar.video.mp4 import joined_audio, segment_audio

    sr = 22050
    clips = [(tone(0.8, sr) * 0.4, 20), (tone(1.2, sr, freq=880) * 0.3, 25), (tone(0.3, sr) * 0.2, 13)]
    segs = [write_mp4(tmp_path / f"s{i}.mp4", frames(n, color=i % 3), fps=FPS, audio=x, sample_rate=sr,
                      audio_codec="flac") for i, (x, n) in enumerate(clips)]
    made = [segment_audio(x, sr, n, FPS) for x, n in clips]
    counts = [c for _, c in made]
    rate = Fraction(FPS)

    def packets(p):
        out = []
        for kind in ("audio", "video"):
            with av.open(str(p)) as c:
                out.append([(bytes(k), k.pts) for k in c.demux(**{kind: 0}) if k.size])
        return out

    def halve(blocks):   # a final-mix stand-in: the filter must be applied ahead as at the join
        return (b * 0.5 for b in blocks())

    ref = concat_mp4(segs, tmp_path / "ref.mp4", audio_filter=halve)
    ahead = (joined_audio([t for t, _ in made], counts, rate, halve), counts, rate)
    out = concat_mp4(segs, tmp_path / "ahead.mp4", audio_filter=halve, audio=ahead)
    assert packets(out) == packets(ref)
    assert np.array_equal(read_audio(out)[0], read_audio(ref)[0])
    assert probe(out)["audio_samples"] == probe(ref)["audio_samples"]
    wrong = (joined_audio([t for t, _ in made], [c + 1 for c in counts], rate, halve), [c + 1 for c in counts], rate)
    again = concat_mp4(segs, tmp_path / "again.mp4", audio_filter=halve, audio=wrong)
    assert packets(again) == packets(ref)


def test_x264_runs_without_its_avx512_code_where_the_cpu_has_it(tmp_path):
    """With its AVX-512 code, x264 gave another stream for the same pictures about 1 encode in
    10 in a process that had rendered other videos (bench/bench_determinism.py): on such a CPU
    the encoder is told to use its code up to AVX2, and x264 says so in its log."""
    import logging

    import av.logging

    from avatar.video.mp4 import x264_asm

    try:
        from numpy.core._multiarray_umath import __cpu_features__ as cpu
    except ImportError:
        from numpy._core._multiarray_umath import __cpu_features__ as cpu
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    log = logging.getLogger("libav")
    handler, level = Keep(), log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    old = av.logging.get_level()
    av.logging.set_level(av.logging.INFO)
    try:
        write_mp4(tmp_path / "a.mp4", [np.full((64, 96, 3), 90, np.uint8)] * 3, fps=8)
    finally:
        av.logging.set_level(old)
        log.removeHandler(handler)
        log.setLevel(level)
    caps = [line for line in lines if "cpu capabilities" in line]
    assert caps, lines                                   # x264 reported what it runs
    if cpu.get("AVX512F") and cpu.get("AVX2"):
        assert x264_asm() == {"x264-params": "asm=AVX2"}
        assert "AVX2" in caps[0] and "AVX512" not in caps[0], caps
    else:
        assert x264_asm() == {}
