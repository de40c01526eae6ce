"""Recorded narration (avatar.speech.recorded) and DTW transcript alignment (avatar.speech.align)."""
import numpy as np
import pytest
import soundfile as sf

from avatar.errors import AvatarError
from avatar.script.models import VoiceSpec
from avatar.speech.align import dtw_path, transfer
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


def test_dtw_path_matches_banded_and_recovers_a_warp():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((60, 4)).astype(np.float32)
    # b: a played with every 3rd frame repeated (a known warp)
    idx = np.sort(np.concatenate([np.arange(60), np.arange(0, 60, 3)]))
    b = a[idx]
    ia, ib = dtw_path(a, b)
    assert (ia[0], ib[0]) == (0, 0) and (ia[-1], ib[-1]) == (59, len(b) - 1)
    assert np.all(np.diff(ia) >= 0) and np.all(np.diff(ib) >= 0)
    assert np.all(idx[ib] == ia)                       # every matched pair is the same frame
    ia2, ib2 = dtw_path(a, b, band=10)
    assert np.array_equal(ia, ia2) and np.array_equal(ib, ib2)


def test_dtw_alignment_recovers_word_times_at_another_speed(piper):
    from avatar.speech.piper_voice import PiperVoice

    text = "Peter bought a big blue boat in Boston, then sailed it slowly across the bay."
    ref = piper.synthesize(text)
    slow = PiperVoice(VoiceSpec(speed=0.75, noise_scale=0.5)).synthesize(text)
    mapped = transfer(ref, slow.audio, slow.sample_rate)
    assert [w.text for w in mapped.words] == [w.text for w in slow.words]
    err = [abs(a.start - b.start) for a, b in zip(mapped.words, slow.words)]
    err += [abs(a.end - b.end) for a, b in zip(mapped.words, slow.words)]
    assert max(err) < 0.06            # 1.5 frames at 25 fps
    assert np.mean(err) < 0.02
    starts = [w.start for w in mapped.words]
    assert starts == sorted(starts)


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
