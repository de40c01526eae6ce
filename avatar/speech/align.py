"""Time a known transcript on recorded speech: forced alignment with pocketsphinx.

The transcript is first read by Piper (avatar.speech.piper_voice): that gives the
words as written, [next] markers and a pronunciation for every word, numbers and
abbreviations included. pocketsphinx (CMU Sphinx, its US-English acoustic model and
dictionary ship inside its wheel) then aligns those words to the recording, phone by
phone, with an acoustic model trained on many real speakers. The result is a Speech of
the real audio with the written words, the aligned phones (as IPA, for the viseme
rig) and the markers moved to the start of the word that follows them.

It replaced aligning a Piper reading to the recording by DTW on MFCCs (the aeneas way):
on speech with known word times (bench/bench_align.py) word starts within 50 ms went
from about 40% to 93-97% (figures in the README).
"""
from __future__ import annotations

import functools
import re
import warnings

import numpy as np

from avatar.errors import AvatarError
from avatar.types import Phoneme, Speech, Word

RATE = 16000          # pocketsphinx's model rate
FRAME = 0.01          # s per pocketsphinx frame
CHUNK_SECONDS = 45.0  # longer recordings are phone-aligned in pieces cut in pauses
SQUEEZED = 0.25       # share of phones at the shortest possible time above which the transcript looks wrong

ARPA_IPA = {
    "AA": "ɑ", "AE": "æ", "AH": "ʌ", "AO": "ɔ", "AW": "aʊ", "AY": "aɪ", "B": "b", "CH": "tʃ", "D": "d",
    "DH": "ð", "EH": "ɛ", "ER": "ɚ", "EY": "eɪ", "F": "f", "G": "ɡ", "HH": "h", "IH": "ɪ", "IY": "i",
    "JH": "dʒ", "K": "k", "L": "l", "M": "m", "N": "n", "NG": "ŋ", "OW": "oʊ", "OY": "ɔɪ", "P": "p",
    "R": "ɹ", "S": "s", "SH": "ʃ", "T": "t", "TH": "θ", "UH": "ʊ", "UW": "u", "V": "v", "W": "w",
    "Y": "j", "Z": "z", "ZH": "ʒ",
}
_IPA_PAIRS = {"aʊ": "AW", "aɪ": "AY", "eɪ": "EY", "oʊ": "OW", "əʊ": "OW", "ɔɪ": "OY", "tʃ": "CH", "dʒ": "JH"}
_IPA_ARPA = {
    **{v: k for k, v in ARPA_IPA.items() if len(v) == 1},
    "a": "AA", "ɒ": "AA", "ə": "AH", "ɐ": "AH", "ᵻ": "IH", "ɨ": "IH", "ɜ": "ER", "ɝ": "ER", "e": "EH",
    "o": "OW", "g": "G", "r": "R", "ɫ": "L", "ɾ": "D", "x": "K", "ɬ": "L", "ʍ": "W",
}
_STRIP = "ˈˌːˑ̩̃ʲʰ-"


def ipa_to_arpa(symbols: list[str]) -> list[str]:
    """ARPAbet phones (pocketsphinx's set) for espeak/Piper IPA symbols; unknown ones are dropped."""
    chars = "".join(c for s in symbols for c in s if c not in _STRIP and not c.isspace() and c != "_")
    out, i = [], 0
    while i < len(chars):
        if chars[i:i + 2] in _IPA_PAIRS:
            out.append(_IPA_PAIRS[chars[i:i + 2]])
            i += 2
            continue
        if chars[i] in _IPA_ARPA:
            out.append(_IPA_ARPA[chars[i]])
        i += 1
    return out


@functools.lru_cache(maxsize=1)
def _reference_voice():
    """The bundled Piper voice that reads transcripts (one per process: it caches word phonemes)."""
    from avatar.script.models import VoiceSpec
    from avatar.speech.piper_voice import PiperVoice

    return PiperVoice(VoiceSpec(sentence_pause=0.1))


def _decoder():
    from pocketsphinx import Decoder

    from avatar.face.quiet import native_quiet

    with native_quiet():
        return Decoder(loglevel="FATAL", bestpath=False, beam=1e-100, wbeam=1e-80, pbeam=1e-100)


def _is_filler(name: str) -> bool:
    """pocketsphinx's silence and noise entries (<sil>, <s>, [NOISE], +BREATH+, SIL), not words."""
    return name.startswith(("<", "[", "+")) or name == "SIL"


def _dictionary_word(decoder, text: str) -> str | None:
    key = re.sub(r"[^a-z']", "", text.lower()).strip("'")
    return key if key and decoder.lookup_word(key) else None


def _pronunciations(reading: Speech) -> list[tuple[int, str, str | None]]:
    """(index in reading.words, pocketsphinx word, pronunciation or None) per written word:
    the dictionary's own word, or a new entry made from Piper's phonemes for that word
    (numbers, names, abbreviations). Words with no phonemes at all are left out."""
    decoder = _decoder()
    out = []
    for i, w in enumerate(reading.words):
        name = _dictionary_word(decoder, w.text)
        if name is not None:
            out.append((i, name, None))
            continue
        phones = ipa_to_arpa([p.symbol for p in reading.phonemes if w.start - 1e-6 <= p.start < w.end])
        if phones:
            out.append((i, f"oov{i}", " ".join(phones)))
    return out


def _to_int16(audio: np.ndarray, sr: int) -> np.ndarray:
    from avatar.motion.features import resample

    a = resample(np.asarray(audio, np.float32), int(sr), RATE)
    return (np.clip(a, -1, 1) * 32767).astype(np.int16)


def _aligner(words: list[tuple[int, str, str | None]]):
    decoder = _decoder()
    for _, name, pron in words:
        if pron is not None:
            decoder.add_word(name, pron, True)
    decoder.set_align_text(" ".join(name for _, name, _ in words))
    return decoder


def _decode(decoder, raw: np.ndarray) -> None:
    decoder.start_utt()
    decoder.process_raw(raw.tobytes(), full_utt=True)
    decoder.end_utt()


def _chunks(words, raw: np.ndarray) -> list[tuple[int, int, int, int]]:
    """(first word, end word, first sample, end sample) pieces, each cut at the first pause
    after CHUNK_SECONDS, the pauses found by a word-level alignment of the whole recording. pocketsphinx's
    phone-level alignment needs memory that grows with the square of the length (about
    0.8 GB for 160 s), its word-level pass almost none."""
    n = len(raw)
    if n <= CHUNK_SECONDS * RATE:
        return [(0, len(words), 0, n)]
    decoder = _aligner(words)
    _decode(decoder, raw)
    if decoder.hyp() is None:
        _fail()
    return _cuts(decoder, len(words), n)


def _cuts(decoder, n_words: int, n: int) -> list[tuple[int, int, int, int]]:
    """The pieces of a word-level alignment (decoded by `decoder`) of n samples, each cut at
    the first pause after CHUNK_SECONDS."""
    hop = RATE * FRAME
    gaps, k = [], 0                      # (cut sample, index of the next word)
    for seg in decoder.seg():
        if _is_filler(seg.word):
            gaps.append((int((seg.start_frame + seg.end_frame + 1) / 2 * hop), k))
        else:
            k += 1
    out, w0, s0 = [], 0, 0
    for cut, k in gaps:
        if cut - s0 >= CHUNK_SECONDS * RATE and w0 < k < n_words:
            out.append((w0, k, s0, cut))
            w0, s0 = k, cut
    out.append((w0, n_words, s0, n))
    return out


def _fail():
    raise AvatarError("could not align the transcript to the recording", field="transcript",
                      hint="check that the transcript is what is spoken, in English")


def force_align(audio: np.ndarray, sr: int, reading: Speech) -> Speech:
    """Speech of the real `audio` with `reading`'s words (a Piper reading of the transcript)
    timed on it by pocketsphinx, the aligned phones as IPA, and the markers carried over."""
    words = _pronunciations(reading)
    if not words:
        raise AvatarError("the transcript has no words to align", field="transcript",
                          hint="give the text that is spoken in the recording")
    spans, phonemes = _align_words(audio, sr, words)
    times = {i: t for (i, _, _), t in zip(words, spans)}
    out: list[Word] = []
    for i, w in enumerate(reading.words):
        t = times.get(i) or ((out[-1].end,) * 2 if out else (spans[0][0],) * 2)   # no phones: glue on
        out.append(Word(w.text, *t))
    return Speech(np.asarray(audio, np.float32), int(sr), phonemes=phonemes, words=out,
                  markers=_carry_markers(reading, out))


def _align_words(audio: np.ndarray, sr: int, words: list[tuple[int, str, str | None]]):
    """(a (start, end) per word, the aligned phones as IPA) of pocketsphinx words on `audio`."""
    raw = _to_int16(audio, sr)
    return _align_chunks(words, _chunks(words, raw), lambda s0, s1: raw[s0:s1], len(audio) / float(sr))


def _align_chunks(words, chunks, raw_of, duration: float):
    """Phone-align each chunk (w0, w1, s0, s1): words[w0:w1] on the 16 kHz int16 samples
    raw_of(s0, s1), times absolute -> (a (start, end) per word, the aligned phones as IPA)."""
    from avatar.face.quiet import native_quiet

    spans: list[tuple[float, float]] = []
    phonemes: list[Phoneme] = []
    with native_quiet():
        try:
            for w0, w1, s0, s1 in chunks:
                raw = raw_of(s0, s1)
                decoder = _aligner(words[w0:w1])
                _decode(decoder, raw)                    # pass 1: words
                if decoder.hyp() is None:
                    _fail()
                decoder.set_alignment()
                _decode(decoder, raw)                    # pass 2: phones (hyp() must not be called now: it crashes)
                alignment = decoder.get_alignment()
                if alignment is None:
                    _fail()
                _read_alignment(alignment, s0 / RATE, duration, spans, phonemes)
        except RuntimeError:
            _fail()
    if len(spans) != len(words):
        _fail()
    _check_fit(phonemes)
    return spans, phonemes


def _check_fit(phonemes: list[Phoneme]) -> None:
    """Warn when the alignment looks forced: a transcript that is not what was said still
    aligns, but many of its sounds get squeezed to the 3-frame minimum (matched speech:
    3-13% in our checks, unrelated text: 16-47% or no alignment at all)."""
    sounds = [p for p in phonemes if p.symbol not in ("_", " ")]
    squeezed = sum(p.end - p.start <= 3.5 * FRAME for p in sounds)
    if len(sounds) >= 20 and squeezed > SQUEEZED * len(sounds):
        warnings.warn(f"the transcript may not match the recording: {squeezed / len(sounds):.0%} of its sounds "
                      "got the shortest possible time (check that the transcript is what is said)", stacklevel=3)


def _read_alignment(alignment, offset: float, duration: float, spans: list, phonemes: list) -> None:
    """Append the aligned words' (start, end) to `spans` and their phones (IPA) to `phonemes`."""
    def span(e):
        return offset + e.start * FRAME, min(offset + (e.start + e.duration) * FRAME, duration)

    for entry in alignment:
        start, end = span(entry)
        if _is_filler(entry.name):
            phonemes.append(Phoneme("_", start, end))
            continue
        spans.append((start, end))
        phonemes.extend(Phoneme(ARPA_IPA.get(p.name, "_"), *span(p)) for p in entry)
        phonemes.append(Phoneme(" ", end, end))


def _carry_markers(reading: Speech, words: list[Word]) -> list[tuple[str, float]]:
    """Each marker at the aligned start of the first word that starts after it in the reading."""
    out = []
    for name, t in reading.markers:
        after = [k for k, w in enumerate(reading.words) if w.start >= t - 1e-6]
        out.append((name, words[after[0]].start if after else words[-1].end))
    return out


def align_transcript(audio: np.ndarray, sr: int, transcript: str, voice=None) -> Speech:
    """Speech of the real `audio` with the transcript's words, phonemes and markers timed on it.
    `voice`: anything with .synthesize(text) -> Speech with words (default: bundled Piper).
    A long recording streamed in pieces (avatar.speech.recorded.RecordingAudio) is aligned
    without ever holding it, nor Piper's reading, whole: see _align_streamed."""
    if hasattr(audio, "pieces"):
        return _align_streamed(audio, transcript, voice or _reference_voice())
    reading = (voice or _reference_voice()).synthesize(transcript)
    return force_align(audio, sr, reading)


# --------------------------------------------------------------------------- long recordings
WINDOW_CHARS = 2000   # a long transcript is read by Piper this much at a time, cut at sentence ends


def _windows(text: str, size: int | None = None) -> list[str]:
    """The transcript in pieces of about `size` characters, each ending at a sentence end."""
    size = size or WINDOW_CHARS
    out, cur = [], ""
    for sentence in re.split(r"(?<=[.!?])\s+", text.strip()):
        if cur and len(cur) + len(sentence) > size:
            out.append(cur)
            cur = ""
        cur = f"{cur} {sentence}" if cur else sentence
    return out + [cur] if cur else out


def _read_windows(transcript: str, voice):
    """The transcript read window by window, keeping only what alignment needs: (word texts,
    pocketsphinx words (index into the texts, name, pronunciation), markers (name, index of the
    first word after it, len(texts) when none follows)); each reading's audio is dropped."""
    texts, words, markers = [], [], []
    for window in _windows(transcript):
        reading = voice.synthesize(window)
        k = len(texts)
        words += [(i + k, f"oov{i + k}" if pron else name, pron) for i, name, pron in _pronunciations(reading)]
        for name, t in reading.markers:
            after = [j for j, w in enumerate(reading.words) if w.start >= t - 1e-6]
            markers.append((name, k + (after[0] if after else len(reading.words))))
        texts += [w.text for w in reading.words]
        del reading
    return texts, words, markers


def _raw_range(audio, a: int, b: int) -> np.ndarray:
    """int16 samples a..b at RATE of a streamed recording, exactly b - a of them."""
    sr = audio.sample_rate
    x0, x1 = a * sr // RATE, min(len(audio), -(-b * sr // RATE))
    raw = _to_int16(audio.read(x0, x1 - x0), sr)
    skip = int(round(x0 * RATE / sr)) - a
    raw = raw[-skip:] if skip < 0 else raw
    return np.pad(raw, (0, max(0, b - a - len(raw))))[: b - a]


def _align_streamed(audio, transcript: str, voice) -> Speech:
    """align_transcript for a RecordingAudio: Piper reads the transcript in windows (only words,
    pronunciations and markers kept); a word-level pass fed piece by piece (pocketsphinx's live
    mean normalisation) finds the pauses; each stretch of about CHUNK_SECONDS between pauses is
    then read back and phone-aligned alone, times kept absolute. Memory stays flat in the length."""
    from avatar.face.quiet import native_quiet

    sr = audio.sample_rate
    texts, words, markers = _read_windows(transcript, voice)
    if not words:
        raise AvatarError("the transcript has no words to align", field="transcript",
                          hint="give the text that is spoken in the recording")
    n = int(round(len(audio) * RATE / sr))
    with native_quiet():
        decoder = _aligner(words)
        decoder.start_utt()
        for (a, b) in zip(audio.bounds, audio.bounds[1:]):
            s0, s1 = int(round(a * RATE / sr)), int(round(b * RATE / sr))
            decoder.process_raw(_raw_range(audio, s0, s1).tobytes(), full_utt=False)
        decoder.end_utt()
        if decoder.hyp() is None:
            _fail()
        chunks = _cuts(decoder, len(words), n)
        del decoder
    spans, phonemes = _align_chunks(words, chunks, lambda s0, s1: _raw_range(audio, s0, s1), len(audio) / float(sr))
    times = {i: t for (i, _, _), t in zip(words, spans)}
    out: list[Word] = []
    for i, text in enumerate(texts):
        t = times.get(i) or ((out[-1].end,) * 2 if out else (spans[0][0],) * 2)
        out.append(Word(text, *t))
    marks = [(name, out[i].start if i < len(out) else out[-1].end) for name, i in markers]
    return Speech(audio, sr, phonemes=phonemes, words=out, markers=marks)


def recognize(audio: np.ndarray, sr: int) -> Speech:
    """Speech of `audio` with words and phones from pocketsphinx's own recognition (its
    bundled US-English language model), then force-aligned. The words are often wrong
    (so never used for captions), but the phones mostly sound alike: `avatar lips eval`
    scores the rig on them as a transcript-free baseline. The recognised words are
    dictionary words, aligned as they are (no Piper reading of them: reading a long
    hypothesis, one sentence without punctuation, took about 1 GB for a minute of speech)."""
    from avatar.face.quiet import native_quiet
    from pocketsphinx import Decoder

    with native_quiet():
        decoder = Decoder(loglevel="FATAL")
        _decode(decoder, _to_int16(audio, sr))
        hyp = decoder.hyp()
        names = [] if hyp is None else [n for n in (_dictionary_word(decoder, w) for w in hyp.hypstr.split())
                                         if n is not None]
    if not names:
        return Speech(np.asarray(audio, np.float32), int(sr))
    words = [(i, name, None) for i, name in enumerate(names)]
    spans, phonemes = _align_words(audio, sr, words)
    return Speech(np.asarray(audio, np.float32), int(sr), phonemes=phonemes,
                  words=[Word(n, *t) for n, t in zip(names, spans)])
