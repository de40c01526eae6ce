"""Festival voices as a second speaker source for the synthetic lips corpus.

Debian's Festival (`festival` binary) with the US female HTS voice (slt) and the
diphone voices kal and kd (US male). One `festival -b script.scm`
process synthesises a batch of texts: for each, `utt.synth` (not SayText, which plays
audio), `utt.save.wave` (RIFF) and the Segment relation (phone, start, end) to a text
file. Speaking rate varies per utterance, and pitch for the diphone voices (the HTS
voice ignores hts_engine's half-tone option). Festival's radio phones are mapped
to the espeak IPA symbols of avatar.motion.visemes; audio is resampled to 16 kHz.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avatar.errors import AvatarError
from avatar.motion import features as F
from avatar.lips.dataset import Utterance
from avatar.types import Phoneme


@dataclass(frozen=True)
class FestivalVoice:
    name: str          # short name used by `avatar lips train --voices`
    voice: str         # Festival voice (voice_<voice> selects it)
    package: str       # Debian package that installs it
    hts: bool = False  # HTS voice (rate/pitch via hts_engine options) rather than a diphone voice


VOICES: dict[str, FestivalVoice] = {v.name: v for v in [
    FestivalVoice("slt", "cmu_us_slt_arctic_hts", "festvox-us-slt-hts", hts=True),
    FestivalVoice("kal", "kal_diphone", "festvox-kallpc16k"),
    FestivalVoice("kd", "ked_diphone", "festvox-kdlpc16k"),
]}

# Festival radio phone set -> espeak-style IPA (keys of avatar.motion.visemes.PHONEME_VISEME)
PHONE_IPA: dict[str, str] = {
    "aa": "ɑ", "ae": "æ", "ah": "ʌ", "ao": "ɔ", "aw": "aʊ", "ax": "ə", "axr": "ɚ", "ay": "aɪ",
    "b": "b", "ch": "tʃ", "d": "d", "dh": "ð", "dx": "ɾ", "eh": "ɛ", "el": "l", "em": "m", "en": "n",
    "er": "ɝ", "ey": "eɪ", "f": "f", "g": "ɡ", "hh": "h", "hv": "h", "ih": "ɪ", "iy": "i", "jh": "dʒ",
    "k": "k", "l": "l", "m": "m", "n": "n", "nx": "n", "ng": "ŋ", "ow": "oʊ", "oy": "ɔɪ", "p": "p",
    "r": "ɹ", "s": "s", "sh": "ʃ", "t": "t", "th": "θ", "uh": "ʊ", "uw": "u", "v": "v", "w": "w",
    "y": "j", "z": "z", "zh": "ʒ", "pau": "_", "h#": "_", "brth": "_",
}

_HELPERS = """(define (avatar-segs utt file)
  (let ((fd (fopen file "w")))
    (mapcar (lambda (seg) (format fd "%s %f %f\\n" (item.name seg)
                                  (item.feat seg "segment_start") (item.feat seg "end")))
            (utt.relation.items utt 'Segment))
    (fclose fd)))
"""


def festival_binary() -> str | None:
    return shutil.which("festival")


def installed_voices(binary: str | None = None) -> list[str]:
    """Short names (VOICES order) of the Festival voices installed; [] without Festival."""
    binary = binary or festival_binary()
    if not binary:
        return []
    res = subprocess.run([binary, "-b", "(print (mapcar car voice-locations))"],
                         capture_output=True, text=True, timeout=60, check=False)
    found = set(res.stdout.replace("(", " ").replace(")", " ").split())
    return [name for name, v in VOICES.items() if v.voice in found]


def check_voices(names: list[str], binary: str | None = None) -> None:
    """AvatarError (one line) for an unknown voice or a Festival voice that is not installed."""
    fest = [n for n in names if n != "piper"]
    for n in fest:
        if n not in VOICES:
            raise AvatarError(f"unknown voice {n!r}", field="--voices",
                              hint="use piper, " + ", ".join(VOICES))
    if not fest:
        return
    binary = binary or festival_binary()
    if not binary:
        raise AvatarError("Festival is not installed", field="--voices",
                          hint="apt-get install festival " + " ".join(VOICES[n].package for n in fest))
    have = installed_voices(binary)
    for n in fest:
        if n not in have:
            raise AvatarError(f"Festival voice {n} ({VOICES[n].voice}) is not installed", field="--voices",
                              hint=f"apt-get install {VOICES[n].package}")


def scheme_string(text: str) -> str:
    """A Scheme string literal (quotes and backslashes escaped, line breaks as spaces)."""
    flat = " ".join(text.split())
    return '"' + flat.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _prosody(voice: FestivalVoice, stretch: float, semitones: float) -> str:
    """Scheme that sets the speaking rate (duration stretch) and pitch for the next utterance."""
    if voice.hts:   # hts_engine -r: speed rate (> 1 faster); Festival ignores -fm, so no pitch shift
        return f'(set! hts_engine_params (append avatar-hts-base (list (list "-r" {1.0 / stretch:.4f}))))'
    f = 2.0 ** (semitones / 12.0)
    return (f"(Parameter.set 'Duration_Stretch {stretch:.4f})"
            f"(set! int_lr_params '((target_f0_mean {105 * f:.1f}) (target_f0_std {15 * f:.1f})"
            f" (model_f0_mean 170) (model_f0_std 34)))")


def synth_script(voice: FestivalVoice, items: list[tuple[str, float, float]], workdir: Path | str) -> str:
    """The Scheme program that synthesises items [(text, stretch, semitones)] into workdir/NNNN.wav/.txt."""
    lines = [_HELPERS, f"(voice_{voice.voice})"]
    if voice.hts:
        lines.append("(set! avatar-hts-base hts_engine_params)")
    for i, (text, stretch, semitones) in enumerate(items):
        stem = str(Path(workdir) / f"{i:04d}")
        lines += [_prosody(voice, stretch, semitones),
                  f"(set! utt1 (utt.synth (Utterance Text {scheme_string(text)})))",
                  f"(utt.save.wave utt1 {scheme_string(stem + '.wav')} 'riff)",
                  f"(avatar-segs utt1 {scheme_string(stem + '.txt')})"]
    return "\n".join(lines) + "\n"


def read_segments(path: Path | str) -> list[Phoneme]:
    """Festival segment dump ('phone start end' lines) -> IPA phonemes."""
    out = []
    for line in Path(path).read_text().splitlines():
        name, start, end = line.split()
        out.append(Phoneme(PHONE_IPA.get(name, name), float(start), float(end)))
    return out


def read_wave(path: Path | str) -> np.ndarray:
    """16-bit RIFF -> mono float32 at 16 kHz."""
    with wave.open(str(path)) as w:
        sr, ch = w.getframerate(), w.getnchannels()
        a = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768.0
    return F.to_model_rate(a.reshape(-1, ch) if ch > 1 else a, sr)


def synthesize(name: str, items: list[tuple[str, float, float]], batch: int = 50,
               binary: str | None = None, progress=None) -> list[Utterance]:
    """Speak items [(text, duration stretch 0.8..1.3, pitch shift in semitones; diphone
    voices only)] with Festival voice
    `name`: one festival process per `batch` items. progress(done, total) after each batch."""
    if name not in VOICES:
        raise AvatarError(f"unknown Festival voice {name!r}", hint="use " + ", ".join(VOICES))
    binary = binary or festival_binary()
    if not binary:
        raise AvatarError("Festival is not installed", hint=f"apt-get install festival {VOICES[name].package}")
    voice, out = VOICES[name], []
    for b in range(0, len(items), batch):
        chunk = items[b: b + batch]
        with tempfile.TemporaryDirectory(prefix="avatar-festival-") as tmp:
            script = Path(tmp) / "script.scm"
            script.write_text(synth_script(voice, chunk, tmp))
            res = subprocess.run([binary, "-b", str(script)], capture_output=True, text=True,
                                 timeout=60 + 10 * len(chunk), check=False)
            for i in range(len(chunk)):
                wav, seg = Path(tmp) / f"{i:04d}.wav", Path(tmp) / f"{i:04d}.txt"
                if not (wav.is_file() and seg.is_file()):
                    err = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
                    raise AvatarError(f"Festival ({voice.voice}) failed on {chunk[i][0]!r}: {err[0]}")
                out.append(Utterance(read_wave(wav), read_segments(seg)))
        if progress:
            progress(len(out), len(items))
    return out
