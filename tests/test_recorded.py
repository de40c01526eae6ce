"""Recorded narration (avatar.speech.recorded) and transcript alignment (avatar.speech.align, pocketsphinx)."""
import numpy as np
import pytest
import soundfile as sf

from avatar.errors import AvatarError
from avatar.script.models import VoiceSpec
from avatar.speech import align
from avatar.speech.recorded import OUTPUT_RATE, RecordedVoice, load_audio


def _tone_speech(sr, seconds=1.0, lead=0.5, tail=0.4, channels=2):
    """A 'speech-like' burst (amplitude-modulated harmonics) between silences."""
    t = np.arange(int(seconds * sr)) / sr
    burst = 0.3 * np.sin(2 * np.pi * 180 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
    mono = np.concatenate([np.zeros(int(lead * sr)), burst, np.zeros(int(tail * sr))]).astype(np.float32)
    if channels == 1:
        return mono
    return np.stack([mono, 0.5 * mono], axis=1)   # right channel quieter


@pytest.fixture(scope="module")
def piper():
    from avatar.speech.piper_voice import PiperVoice

    return PiperVoice(VoiceSpec())


def test_stereo_44k_wav_becomes_mono_speech(tmp_path):
    path = tmp_path / "talk.wav"
    stereo = _tone_speech(44100)
    sf.write(path, stereo, 44100)
    audio, sr = load_audio(path)
    assert sr == 44100 and audio.ndim == 1 and len(audio) == len(stereo)
    np.testing.assert_allclose(audio, stereo.mean(axis=1), atol=2e-4)   # channel average

    with pytest.warns(UserWarning, match="no transcript"):
        speech = RecordedVoice(VoiceSpec(engine="recorded", audio=path)).synthesize("")
    assert speech.sample_rate == OUTPUT_RATE and speech.audio.ndim == 1
    assert speech.words == []
    # leading 0.5 s and trailing 0.4 s of silence trimmed to ~0.15 s margins
    assert 1.15 < speech.duration < 1.45
    assert np.abs(speech.audio).max() <= 1.0


def test_relative_audio_path_uses_base_dir(tmp_path):
    sf.write(tmp_path / "n.flac", _tone_speech(16000, channels=1), 16000)
    voice = RecordedVoice(VoiceSpec(engine="recorded", audio="n.flac"), base_dir=tmp_path)
    assert voice.load().dtype == np.float32


def test_silent_file_is_an_error_naming_it(tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(16000, np.float32), 16000)
    with pytest.raises(AvatarError, match="silence.wav.*silent"):
        RecordedVoice(VoiceSpec(engine="recorded", audio=path)).synthesize("")


def test_corrupt_and_missing_files_are_errors_naming_them(tmp_path):
    bad = tmp_path / "broken.mp3"
    bad.write_bytes(b"ID3 this is not really an mp3 file" * 10)
    with pytest.raises(AvatarError, match="broken.mp3") as e:
        load_audio(bad)
    assert "\n" not in str(e.value)
    with pytest.raises(AvatarError, match="nowhere.wav.*not found"):
        load_audio(tmp_path / "nowhere.wav")
    with pytest.raises(AvatarError, match="voice.audio"):
        RecordedVoice(VoiceSpec(engine="recorded"))


def test_ipa_to_arpa_covers_piper_symbols():
    # stress and length marks dropped, diphthongs and affricates joined, word gaps ignored
    assert align.ipa_to_arpa(["t", "ˈa", "ɪ", "m", " ", "tʃ", "ˈɜː", "tʃ", "_"]) == ["T", "AY", "M", "CH", "ER", "CH"]
    assert align.ipa_to_arpa(["ð", "ə", "ɾ", "ᵻ", "ŋ", "ɡ", "oʊ"]) == ["DH", "AH", "D", "IH", "NG", "G", "OW"]
    assert set(align.ARPA_IPA) >= {"AA", "P", "B", "M", "ZH"}


def _word_errors(aligned, truth):
    assert [w.text for w in aligned.words] == [w.text for w in truth.words]
    return [abs(a.start - b.start) for a, b in zip(aligned.words, truth.words)]


TEXT = "Peter bought 42 big blue boats in Boston, then [next] sailed them slowly across the bay."


@pytest.mark.parametrize("chunk", [None, 2.0])
def test_alignment_recovers_word_times_of_another_reading(piper, monkeypatch, chunk):
    """A slower, noisier reading stands in for a recording: its own word times are the truth.
    With chunk=2 s the recording is phone-aligned in pieces cut in its pauses (the long-file path)."""
    from avatar.speech.piper_voice import PiperVoice

    if chunk:
        monkeypatch.setattr(align, "CHUNK_SECONDS", chunk)
    slow = PiperVoice(VoiceSpec(speed=0.75, noise_scale=0.8)).synthesize(TEXT)
    aligned = align.align_transcript(slow.audio, slow.sample_rate, TEXT)
    err = _word_errors(aligned, slow)
    # Piper's own word starts run ~40-70 ms behind an acoustic aligner's (bench/bench_align.py);
    # an aligner that lost its place would be off by hundreds of ms
    assert np.median(err) < 0.1 and max(err) < 0.2
    starts = [w.start for w in aligned.words]
    assert starts == sorted(starts) and all(w.start <= w.end <= aligned.duration for w in aligned.words)
    # aligned phones come as IPA the viseme rig knows: the b/p/m of "bought", "big", "blue", "boats", "Boston"
    assert sum(p.symbol in ("b", "p", "m") for p in aligned.phonemes) >= 6
    # the [next] marker lands at the start of "sailed"
    sailed = next(w for w in aligned.words if w.text == "sailed")
    assert aligned.markers == [("next", sailed.start)]
    if chunk:
        assert len(align._chunks(align._pronunciations(piper.synthesize(TEXT)),
                                 align._to_int16(slow.audio, slow.sample_rate))) > 1


def test_recognize_hears_phones_without_a_transcript(piper):
    spoken = piper.synthesize("Maybe we should visit Paris in the spring.")
    heard = align.recognize(spoken.audio, spoken.sample_rate)
    assert heard.words and all(0 <= w.start <= w.end <= heard.duration + 1e-6 for w in heard.words)
    assert any(p.symbol in ("b", "p", "m") for p in heard.phonemes)


def test_forced_looking_alignment_warns():
    from avatar.types import Phoneme

    def phones(n_short, n_long):
        out, t = [], 0.0
        for d in [0.03] * n_short + [0.09] * n_long:
            out.append(Phoneme("a", t, t + d))
            t += d
        return out

    with pytest.warns(UserWarning, match="transcript may not match the recording: 40%"):
        align._check_fit(phones(12, 18))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        align._check_fit(phones(3, 27))          # 10% squeezed: normal speech
        align._check_fit(phones(8, 2))           # too few sounds to judge


def test_alignment_of_an_empty_transcript_is_an_error(piper):
    with pytest.raises(AvatarError, match="transcript.*no words"):
        align.force_align(np.zeros(16000, np.float32), 16000, piper.synthesize("[pause 0.5s]"))


def test_recorded_voice_with_transcript_gets_words(tmp_path, piper):
    text = "Maybe we should visit Paris in the spring."
    spoken = piper.synthesize(text)
    path = tmp_path / "mine.wav"
    sf.write(path, np.concatenate([np.zeros(8000), spoken.audio, np.zeros(8000)]), spoken.sample_rate)
    speech = RecordedVoice(VoiceSpec(engine="recorded", audio=path, transcript=text)).synthesize("")
    assert [w.text for w in speech.words] == [w.text for w in spoken.words]
    assert all(0 <= w.start < w.end <= speech.duration + 1e-6 for w in speech.words)
    # the leading silence was trimmed to the margin: the first word starts near 0.15 s + Piper's own lead
    assert abs(speech.words[0].start - (0.15 + spoken.words[0].start)) < 0.06


# --------------------------------------------------------------------------- long recordings, streamed
def _bursts(sr, n=5, burst=0.6, gap=0.5, level=0.3):
    """n tone bursts with `gap` s of silence between them (and around them)."""
    t = np.arange(int(burst * sr)) / sr
    tone = (level * np.sin(2 * np.pi * 180 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)
    quiet = np.zeros(int(gap * sr), np.float32)
    return np.concatenate([quiet] + [np.concatenate([tone, quiet]) for _ in range(n)])


def test_short_recording_is_one_array_as_before(tmp_path):
    from avatar.motion.features import resample
    from avatar.speech.recorded import open_recording, prepare

    path = tmp_path / "short.wav"
    sf.write(path, _bursts(16000), 16000, subtype="PCM_16")
    audio, sr = load_audio(path)
    got = open_recording(path)
    assert isinstance(got, np.ndarray)
    assert np.array_equal(got, prepare(resample(audio, sr, OUTPUT_RATE), OUTPUT_RATE, path))


def test_long_recording_streams_in_pieces_cut_in_pauses(tmp_path, monkeypatch):
    from avatar.motion.features import resample
    from avatar.speech import recorded
    from avatar.speech.recorded import RecordingAudio, open_recording, prepare

    path = tmp_path / "long.wav"
    sf.write(path, 1.3 * _bursts(16000, level=0.8), 16000, subtype="FLOAT")   # peaks above 1: scaled like prepare
    with pytest.warns(UserWarning, match="clips"):
        whole = prepare(resample(load_audio(path)[0], 16000, OUTPUT_RATE), OUTPUT_RATE, path)
    monkeypatch.setattr(recorded, "PIECE_SECONDS", 1.6)
    with pytest.warns(UserWarning, match="clips"):
        got = open_recording(path)
    assert isinstance(got, RecordingAudio) and got.sample_rate == OUTPUT_RATE
    assert len(got.bounds) - 1 >= 3 and got.bounds[0] == 0 and got.bounds[-1] == len(got)
    assert all(b - a <= 1.6 * OUTPUT_RATE + 1 for a, b in zip(got.bounds, got.bounds[1:]))
    streamed = np.asarray(got)
    assert streamed.dtype == np.float32
    for cut in got.bounds[1:-1]:     # every cut in a pause
        assert np.abs(streamed[cut - 2000:cut + 2000]).max() < 1e-3
    # trimmed within a loudness frame of where one pass trims, then the same samples
    lag = int(np.argmax(np.abs(whole) > 0.01)) - int(np.argmax(np.abs(streamed) > 0.01))
    assert abs(lag) <= 0.02 * OUTPUT_RATE
    a, b = (whole[lag:], streamed) if lag >= 0 else (whole, streamed[-lag:])
    m = min(len(a), len(b))
    assert abs(len(a) - len(b)) <= 0.02 * OUTPUT_RATE
    np.testing.assert_allclose(b[:m], a[:m], atol=2e-3)
    t0, first = next(got.pieces())
    assert t0 == 0 and np.array_equal(first, streamed[:got.bounds[1]])
    got.close()


def test_streamed_recording_encodes_the_same_audio_as_its_array(tmp_path, monkeypatch):
    from avatar.speech import recorded
    from avatar.video.mp4 import read_audio, write_mp4

    path = tmp_path / "long.wav"
    sf.write(path, _bursts(16000), 16000, subtype="PCM_16")
    monkeypatch.setattr(recorded, "PIECE_SECONDS", 1.6)
    audio = recorded.open_recording(path)
    frames = [np.full((32, 32, 3), 100, np.uint8)] * 20
    a = write_mp4(tmp_path / "a.mp4", frames, fps=5, audio=audio, sample_rate=OUTPUT_RATE)
    b = write_mp4(tmp_path / "b.mp4", frames, fps=5, audio=np.asarray(audio), sample_rate=OUTPUT_RATE)
    assert np.array_equal(read_audio(a)[0], read_audio(b)[0])


def test_streamed_motion_matches_one_pass(tmp_path, monkeypatch, piper):
    """Motion of a recording streamed in pieces against one pass over its array: the rig on
    known phonemes is the same; the audio model (each piece apart) and 'auto' (each piece's
    phones recognised apart) follow it closely, and the mouth is shut where pieces join."""
    from avatar.motion import make_motion
    from avatar.script.models import AvatarSpec
    from avatar.speech import recorded
    from avatar.types import Speech

    gap = np.zeros(int(0.8 * piper.sample_rate), np.float32)
    said = [piper.synthesize(t) for t in ("Maybe we should visit Paris in the spring.",
                                          "Bob bought a big map, then Pam came by.")]
    path = tmp_path / "long.wav"
    sf.write(path, np.concatenate([gap, said[0].audio, gap, said[1].audio, gap]), piper.sample_rate)
    monkeypatch.setattr(recorded, "PIECE_SECONDS", 4.0)
    audio = recorded.open_recording(path)
    assert len(audio.bounds) == 3                       # cut once, in the middle pause
    array = np.asarray(audio)
    phones = said[0].phonemes
    cut = round(audio.bounds[1] / OUTPUT_RATE * 25)
    for motion in ("phonemes", "audio", "auto"):
        spec = AvatarSpec(motion=motion)
        known = phones if motion == "phonemes" else []
        a = make_motion(Speech(audio, OUTPUT_RATE, phonemes=known), 25, spec)
        b = make_motion(Speech(array, OUTPUT_RATE, phonemes=known), 25, spec)
        assert len(a) == len(b) == round(len(array) / OUTPUT_RATE * 25)
        assert np.array_equal(a.blink, b.blink)
        if motion == "phonemes":
            for k in ("mouth", "head", "brow"):
                assert np.array_equal(getattr(a, k), getattr(b, k))
            continue
        assert np.corrcoef(a.mouth[:, 0], b.mouth[:, 0])[0, 1] > 0.95
        assert a.mouth[cut - 3:cut + 4, 0].max() < 0.03 and b.mouth[:, 0].max() > 0.15
        assert np.abs(a.mouth[cut - 3:cut + 4] - b.mouth[cut - 3:cut + 4]).max() < 0.02


def test_streamed_alignment_matches_one_pass(tmp_path, monkeypatch):
    """A long recording with its transcript: read in windows, word pass fed piece by piece,
    phones aligned stretch by stretch; the same words at about the same times as one pass."""
    from avatar.speech import recorded
    from avatar.speech.piper_voice import PiperVoice

    slow = PiperVoice(VoiceSpec(speed=0.75, noise_scale=0.8, sentence_pause=0.9)).synthesize(TEXT + " " + TEXT)
    path = tmp_path / "long.wav"
    sf.write(path, slow.audio, slow.sample_rate)
    one = RecordedVoice(VoiceSpec(engine="recorded", audio=path, transcript=TEXT + " " + TEXT)).synthesize()
    monkeypatch.setattr(recorded, "PIECE_SECONDS", 4.0)
    monkeypatch.setattr(align, "CHUNK_SECONDS", 3.0)
    monkeypatch.setattr(align, "WINDOW_CHARS", 60)
    assert len(align._windows(TEXT + " " + TEXT)) == 2
    voice = RecordedVoice(VoiceSpec(engine="recorded", audio=path, transcript=TEXT + " " + TEXT))
    streamed = voice.stream()
    assert isinstance(streamed.audio, recorded.RecordingAudio) and len(streamed.audio.bounds) > 2
    assert [w.text for w in streamed.words] == [w.text for w in one.words]
    err = [abs(a.start - b.start) for a, b in zip(streamed.words, one.words)]
    assert np.median(err) < 0.03 and max(err) < 0.1
    sailed = [w.start for w in streamed.words if w.text == "sailed"]
    assert [m for m, _ in streamed.markers] == ["next", "next"] and [t for _, t in streamed.markers] == sailed
    assert sum(p.symbol in ("b", "p", "m") for p in streamed.phonemes) >= 12
    assert all(0 <= p.start <= p.end <= streamed.duration + 1e-6 for p in streamed.phonemes)


def test_say_streams_a_long_recording_end_to_end(tmp_path, monkeypatch, piper, astronaut_path):
    """avatar.say on a recording longer than a piece: the clip lasts as long as the prepared
    recording and carries its audio, leveled as the same samples in memory are (the encoder
    read it from the temporary file in blocks)."""
    from avatar.api import LOUDNESS, leveled, say
    from avatar.speech import recorded
    from avatar.video import probe
    from avatar.video.mp4 import read_audio, write_mp4

    gap = np.zeros(int(0.8 * piper.sample_rate), np.float32)
    said = piper.synthesize("Bob bought a big map, then Pam came by.").audio
    path = tmp_path / "take.wav"
    sf.write(path, np.concatenate([gap, said, gap, said, gap]), piper.sample_rate)
    monkeypatch.setattr(recorded, "PIECE_SECONDS", 3.0)
    audio = recorded.open_recording(path)
    assert isinstance(audio, recorded.RecordingAudio) and len(audio.bounds) > 2
    with pytest.warns(UserWarning, match="no transcript"):
        r = say(audio=path, face=astronaut_path, out=tmp_path / "take.mp4", fps=10, size=96, motion="phonemes")
    info = probe(r.out)
    assert info["frames"] == r.frames == round(len(audio) / OUTPUT_RATE * 10)
    frames = [np.zeros((96, 96, 3), np.uint8)] * r.frames
    ref = write_mp4(tmp_path / "ref.mp4", frames, fps=10, audio=leveled(np.asarray(audio), OUTPUT_RATE, LOUDNESS),
                    sample_rate=OUTPUT_RATE)
    assert np.array_equal(read_audio(r.out)[0], read_audio(ref)[0])


def test_transcript_read_in_windows_keeps_words_and_markers(piper, monkeypatch):
    text = "[next] Peter bought 42 boats. Then he sailed. [next] Slowly across the bay! Done. [next]"
    reading = piper.synthesize(text)
    monkeypatch.setattr(align, "WINDOW_CHARS", 20)
    assert len(align._windows(text)) == 4
    texts, words, markers = align._read_windows(text, piper)
    assert texts == [w.text for w in reading.words]
    assert words == align._pronunciations(reading)          # the same dictionary words and oov entries
    first_after = [next((k for k, w in enumerate(reading.words) if w.start >= t - 1e-6), len(texts))
                   for _, t in reading.markers]
    assert markers == [("next", k) for k in first_after] and first_after[-1] == len(texts)
