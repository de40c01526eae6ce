"""Coqui TTS voice: error paths always; the wrapper with a stand-in engine; a real tiny
random VITS model when coqui-tts is installed (it is not beside torch 2.13 in our venv)."""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from avatar.errors import AvatarError
from avatar.script.models import VoiceSpec
from avatar.speech import coqui
from avatar.types import Speech, Word


@pytest.fixture(autouse=True)
def fresh_cache():
    coqui.load_coqui.cache_clear()
    yield
    coqui.load_coqui.cache_clear()


@pytest.fixture
def files(tmp_path):
    (tmp_path / "model.pth").write_bytes(b"x")
    (tmp_path / "config.json").write_text("{}")
    return tmp_path


def spec(tmp, **kw):
    return VoiceSpec(engine="coqui", preset=None, model_path=tmp / "model.pth", config_path=tmp / "config.json", **kw)


# ---------------------------------------------------------------------------- errors
def test_missing_model_path_names_the_field():
    with pytest.raises(AvatarError, match=r"^voice.model_path: .*config_path"):
        coqui.CoquiVoice(VoiceSpec(engine="coqui", preset=None))


def test_missing_files_name_the_path(tmp_path):
    with pytest.raises(AvatarError, match=r"voice.model_path: file not found: .*nope.pth"):
        coqui.CoquiVoice(VoiceSpec(engine="coqui", preset=None, model_path=tmp_path / "nope.pth"))
    (tmp_path / "m.pth").write_bytes(b"x")
    with pytest.raises(AvatarError, match=r"voice.config_path: .*config.json"):
        coqui.CoquiVoice(VoiceSpec(engine="coqui", preset=None, model_path=tmp_path / "m.pth"))


def test_relative_paths_use_the_script_folder(files):
    with pytest.raises(AvatarError, match="speaker_wav: file not found: .*me.wav"):
        coqui.CoquiVoice(VoiceSpec(engine="coqui", preset=None, model_path="model.pth", config_path="config.json",
                                   speaker_wav="me.wav"), base_dir=files)


def test_missing_package_says_which_extra(files, monkeypatch):
    monkeypatch.setitem(sys.modules, "TTS", None)
    monkeypatch.setitem(sys.modules, "TTS.api", None)
    with pytest.raises(AvatarError) as e:
        coqui.CoquiVoice(spec(files))
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("voice.engine: ") and "avatar-presenter[coqui]" in msg


# ---------------------------------------------------------------------------- wrapper (stand-in engine)
class StandInTTS:
    """Plays the part of TTS.api.TTS: a 200 Hz tone, 0.05 s per character."""

    calls: list = []

    def __init__(self, model_path=None, config_path=None, progress_bar=True):
        if model_path.endswith("broken.pth"):
            raise RuntimeError("size mismatch for text_encoder.emb.weight")
        self.synthesizer = types.SimpleNamespace(output_sample_rate=16000)
        self.is_multi_speaker, self.is_multi_lingual, self.speakers = False, False, None

    def to(self, device):
        return self

    def tts(self, text, **kwargs):
        StandInTTS.calls.append((text, kwargs))
        n = int(0.05 * len(text) * 16000)
        return list(0.3 * np.sin(np.arange(n) * 2 * np.pi * 200 / 16000))


@pytest.fixture
def stand_in(monkeypatch):
    mod = types.ModuleType("TTS.api")
    mod.TTS = StandInTTS
    monkeypatch.setitem(sys.modules, "TTS", types.ModuleType("TTS"))
    monkeypatch.setitem(sys.modules, "TTS.api", mod)
    StandInTTS.calls = []
    aligned = []

    def fake_align(audio, sr, transcript):
        aligned.append(transcript)
        return Speech(audio, sr, words=[Word(w, 0.0, len(audio) / sr) for w in transcript.split()])

    align = types.ModuleType("avatar.speech.align")
    align.align_transcript = fake_align
    monkeypatch.setitem(sys.modules, "avatar.speech.align", align)
    return aligned


def test_synthesize_builds_speech_with_pauses_markers_and_words(files, stand_in):
    voice = coqui.CoquiVoice(spec(files, speaker_wav=files / "config.json", language="de", speed=1.25))
    s = voice.synthesize("Hello  there. [pause 0.5s] [next] Second part.")
    assert s.sample_rate == 16000 and s.audio.dtype == np.float32
    spoken = 0.05 * (len("Hello there.") + len("Second part."))
    assert s.duration == pytest.approx(spoken + 0.5, abs=0.01)
    assert stand_in == ["Hello there.", "Second part."]
    assert [w.text for w in s.words] == ["Hello", "there.", "Second", "part."]
    assert s.words[2].start == pytest.approx(0.05 * 12 + 0.5, abs=0.01)     # shifted past the pause
    assert s.markers == [("next", pytest.approx(0.05 * 12 + 0.5, abs=0.01))]
    _, kw = StandInTTS.calls[0]
    assert kw == {"speaker_wav": str(files / "config.json"), "language": "de", "speed": 1.25}


def test_model_that_fails_to_load_is_a_clear_error(files, stand_in):
    (files / "broken.pth").write_bytes(b"x")
    with pytest.raises(AvatarError, match=r"voice.model_path: cannot load the Coqui model .*broken.pth.*size mismatch"):
        coqui.CoquiVoice(VoiceSpec(engine="coqui", preset=None, model_path=files / "broken.pth",
                                   config_path=files / "config.json"))


def test_bad_markup_is_a_narration_error(files, stand_in):
    with pytest.raises(AvatarError, match="narration: unknown markup"):
        coqui.CoquiVoice(spec(files)).synthesize("Hi [wave]")


# ---------------------------------------------------------------------------- real coqui-tts (when installed)
def test_tiny_random_vits_through_the_real_loader(tmp_path, stand_in):
    pytest.importorskip("TTS.tts.models.vits", reason="coqui-tts not installed (extra 'coqui')")
    import torch
    from TTS.tts.configs.vits_config import VitsConfig
    from TTS.tts.models.vits import Vits, VitsArgs

    sys.modules.pop("TTS.api", None)   # the real one, not the stand-in
    sys.modules.pop("TTS", None)
    cfg = VitsConfig(model_args=VitsArgs(hidden_channels=16, hidden_channels_ffn_text_encoder=32, num_heads_text_encoder=2,
                                         num_layers_text_encoder=1, num_layers_flow=1, num_layers_posterior_encoder=1,
                                         resblock_type_decoder="2", upsample_rates_decoder=[8, 8, 4],
                                         upsample_initial_channel_decoder=16,
                                         upsample_kernel_sizes_decoder=[16, 16, 8],
                                         resblock_kernel_sizes_decoder=[3], resblock_dilation_sizes_decoder=[[1, 3]]),
                     use_phonemes=False, text_cleaner="basic_cleaners")
    cfg.audio.sample_rate = 16000
    torch.manual_seed(0)
    model = Vits.init_from_config(cfg)
    torch.save({"model": model.state_dict()}, tmp_path / "model.pth")
    cfg.save_json(str(tmp_path / "config.json"))
    s = coqui.CoquiVoice(spec(tmp_path)).synthesize("hello world")
    assert s.sample_rate == 16000 and len(s.audio) > 0 and np.isfinite(s.audio).all()
    assert stand_in == ["hello world"]
