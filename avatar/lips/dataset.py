"""Training data for the audio-to-mouth model.

Synthetic corpus (our own code end to end): programmatically generated English
sentences (templates over word lists chosen for phonetic variety: bilabials, rounded
and spread vowels, clusters, numbers, questions), spoken by Piper at varied speed and
noise settings, with exact phoneme times; targets come from the viseme rig
(avatar.motion.rig.mouth_track), so the model and the phoneme path share units.

Augmentation for real voices (`augment`): speed perturbation (resampling: pitch and
tempo together; targets recomputed from the stretched phoneme times), vocal-tract
length perturbation (frequency warp of the spectrum), additive noise at random SNR,
synthetic room reverberation (exponentially decaying noise impulse response),
band-limiting (telephone 300-3400 Hz, laptop microphone), loudness changes with
occasional clipping, random leading/trailing silence.

Real footage (`augment_real`): the same audio augmentation on a real clip's own speech,
its measured mouth track (avatar.lips.real) resampled onto the augmented timeline.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from avatar.files import atomic_path
from avatar.motion import features as F
from avatar.types import Phoneme

# ----------------------------------------------------------------------------- sentences
_NOUNS = """people time year way day man woman child world life hand part place week case point
government company number group problem fact book bread butter mother father baby boat bottle
moon pool room shoe school food music movie museum market mountain picture pocket paper pepper
plane planet player poem potato pumpkin machine map model monkey money morning mirror window
water weather wheel whale wool river road rabbit rainbow robot rocket rope ship shop sheep
cheese chair chicken church judge jacket jungle garden guitar giraffe ghost kitchen key king
queen question engine island ocean orange umbrella uncle village voice violin vegetable
thumb thought theatre feather father photo phone fish forest fox friend fruit letter lemon
lion light leaf yellow yard zoo zebra camera computer coffee cookie cloud clock bridge bubble
brother butterfly elephant airport apple ant avocado oven owl ear eye idea image""".split()
_VERBS = """builds opens moves brings makes keeps finds shows bought played pushed pulled
measured managed mapped mixed viewed loved lived followed fetched fixed thought threw
watched washed wished judged joined chose chewed grew knew blew drew flew sang rang
spoke broke woke wrote rode sold told called cooked looked booked baked biked jumped
swam smiled smelled stopped stepped stood shouted shipped whispered wondered wandered
paints prints plays prays pays buys bakes boils burns beams booms""".split()
_ADJS = """big small happy sad blue brown purple pink green red black white bright dark
loud quiet smooth rough soft sharp warm cool cold hot huge tiny young old new odd
early easy busy lazy crazy funny sunny shiny cheap deep sweet sour bitter better
beautiful wonderful awful useful careful powerful perfect proper simple humble""".split()
_ADVS = """quickly slowly quietly loudly happily badly boldly gently proudly openly
often always maybe perhaps probably usually rarely nearly barely""".split()
_PREPS = "with without over under by beside behind between beyond before after near into onto from for about around through".split()
_NAMES = """Bob Mary Peter Paul Emma Maya Tom Anna Mike Mia Bill Beth Max Molly Ruth Joe Zoe
Chloe Luke Sophie Oliver Amelia Noah Olivia Ethan Ava Hugo Isla""".split()
_PLACES = "Paris Boston Berlin Tokyo Madrid Bombay Memphis Miami Oslo Peru Brazil Egypt".split()
_TEMPLATES = [
    "The {adj} {noun} {verb} the {noun}.",
    "{name} {verb} a {adj} {noun} {prep} the {noun}.",
    "{name} and {name} {verb} {adv} {prep} {place}.",
    "Why did the {noun} {verb0} the {adj} {noun}?",
    "Did {name} really {verb0} the {noun} {prep} the {noun}?",
    "I think {name} {verb} {num} {noun}s in {place}.",
    "Please bring me {num} {adj} {noun}s and a {noun}.",
    "My {noun} is {adj}, but your {noun} is {adj}.",
    "{adv}, the {noun} {verb} {prep} the {adj} {noun}.",
    "We {verb} the {noun}, the {noun}, and the {noun}.",
    "Oh, what a {adj} {noun}!",
    "It was {adj} and {adj}, so {name} {verb} the {noun}.",
    "In {year}, {name} {verb} {num} {adj} {noun}s.",
    "{name} said: the {noun} {verb} {adv}.",
    "How many {noun}s did you {verb0} {prep} {place}?",
    "Maybe the {noun} {verb} {prep} the {noun}, maybe not.",
    "Look at the {adj} {noun} {prep} the {noun}.",
    "You should {verb0} the {noun} before the {noun} {verb}.",
]
_BASE = {"bought": "buy", "thought": "think", "threw": "throw", "chose": "choose", "chewed": "chew",
         "grew": "grow", "knew": "know", "blew": "blow", "drew": "draw", "flew": "fly", "sang": "sing",
         "rang": "ring", "spoke": "speak", "broke": "break", "woke": "wake", "wrote": "write",
         "rode": "ride", "sold": "sell", "told": "tell", "swam": "swim", "stood": "stand"}


def _base_form(verb: str) -> str:
    if verb in _BASE:
        return _BASE[verb]
    for suffix in ("ed", "s"):
        if verb.endswith(suffix):
            stem = verb[: -len(suffix)]
            if suffix == "ed" and len(stem) > 2 and stem[-1] == stem[-2]:
                stem = stem[:-1]
            return stem
    return verb


def make_sentence(rng: np.random.Generator) -> str:
    """One random sentence from the templates (or, 1 in 8, a random word string)."""
    pick = lambda seq: seq[int(rng.integers(len(seq)))]  # noqa: E731
    if rng.random() < 0.125:
        words = [pick(_NOUNS + _ADJS + _VERBS + _ADVS) for _ in range(int(rng.integers(3, 9)))]
        return " ".join(words).capitalize() + pick([".", "!", "?"])
    tpl = pick(_TEMPLATES)
    out = []
    for chunk in tpl.split("{"):
        if "}" not in chunk:
            out.append(chunk)
            continue
        key, rest = chunk.split("}", 1)
        val = {
            "adj": lambda: pick(_ADJS), "noun": lambda: pick(_NOUNS), "verb": lambda: pick(_VERBS),
            "verb0": lambda: _base_form(pick(_VERBS)), "adv": lambda: pick(_ADVS),
            "prep": lambda: pick(_PREPS), "name": lambda: pick(_NAMES), "place": lambda: pick(_PLACES),
            "num": lambda: str(int(rng.integers(2, 99))), "year": lambda: str(int(rng.integers(1900, 2030))),
        }[key]()
        out.append(val + rest)
    s = "".join(out)
    return s[0].upper() + s[1:]


def make_text(rng: np.random.Generator) -> str:
    return " ".join(make_sentence(rng) for _ in range(int(rng.integers(1, 4))))


# ----------------------------------------------------------------------------- corpus
@dataclass
class Utterance:
    audio: np.ndarray            # float32 mono at 16 kHz
    phonemes: list[Phoneme]      # exact times (s), from the synthesiser (Piper or Festival)


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "avatar" / "lips"


def synth_corpus(n: int, seed: int = 0, cache: bool = True, progress=None) -> list[Utterance]:
    """n Piper utterances of generated text, varied speed and noise; cached on disk by (n, seed)."""
    key = hashlib.sha1(json.dumps({"n": n, "seed": seed, "v": 2}).encode()).hexdigest()[:12]
    path = cache_dir() / f"corpus-{key}.npz"
    if cache and path.is_file():
        return _load_corpus(path)
    from avatar.script.models import VoiceSpec
    from avatar.speech.piper_voice import PiperVoice

    rng = np.random.default_rng(seed)
    voices: dict[tuple, PiperVoice] = {}
    out: list[Utterance] = []
    for i in range(n):
        spec = (round(float(rng.uniform(0.75, 1.35)), 2), round(float(rng.uniform(0.3, 1.0)), 2),
                round(float(rng.uniform(0.4, 1.1)), 2))
        if spec not in voices:
            voices[spec] = PiperVoice(VoiceSpec(speed=spec[0], noise_scale=spec[1], noise_w=spec[2],
                                                sentence_pause=float(rng.uniform(0.05, 0.4))))
        speech = voices[spec].synthesize(make_text(rng))
        out.append(Utterance(F.to_model_rate(speech.audio, speech.sample_rate), list(speech.phonemes)))
        if progress:
            progress(i + 1, n)
    # int16-quantised like the cache, so a run gives the same model with or without the cache
    out = [Utterance(_from_int16(_to_int16(u.audio)), u.phonemes) for u in out]
    if cache:
        _save_corpus(path, out)
    return out


FESTIVAL_SHARE = 0.4   # Festival's share of the corpus when Piper is in it (on top of the n Piper utterances)


def corpus_voices(requested: list[str] | None = None, log=print) -> list[str]:
    """The voices to train on: `requested` (checked; AvatarError if unknown or not installed) or,
    for None, "piper" plus every installed Festival voice (a one-line notice when there is none)."""
    from avatar.lips import festival as FV

    if requested is not None:
        names = list(dict.fromkeys(v.strip() for v in requested if v.strip()))
        if not names:
            from avatar.errors import AvatarError
            raise AvatarError("no voice given", field="--voices", hint="e.g. piper," + ",".join(FV.VOICES))
        FV.check_voices(names)
        return names
    found = FV.installed_voices()
    if not found:
        log("Festival voices not found: corpus is Piper speech only (apt-get install festival "
            + " ".join(v.package for v in FV.VOICES.values()) + " adds speakers)")
    return ["piper", *found]


def mixed_corpus(n: int, voices: list[str], seed: int = 0, cache: bool = True,
                 progress=None) -> dict[str, list[Utterance]]:
    """voice -> utterances. "piper": synth_corpus(n, seed) (unchanged); the Festival voices share
    round(n * FESTIVAL_SHARE / (1 - FESTIVAL_SHARE)) utterances (dealt round-robin; texts, rates and
    pitches from their own seeded rng), each voice's part cached on disk by (count, seed, voice list)."""
    from avatar.lips import festival as FV

    out: dict[str, list[Utterance]] = {}
    if "piper" in voices:
        out["piper"] = synth_corpus(n, seed=seed, cache=cache, progress=progress)
    fest = [v for v in voices if v != "piper"]
    if not fest:
        return out
    m = round(n * FESTIVAL_SHARE / (1 - FESTIVAL_SHARE))
    rng = np.random.default_rng([seed, 0xFE57])
    items: dict[str, list] = {v: [] for v in fest}
    for i in range(m):
        items[fest[i % len(fest)]].append((make_text(rng), round(float(rng.uniform(0.8, 1.3)), 3),
                                           round(float(rng.uniform(-3.0, 3.0)), 2)))
    for v in fest:
        key = hashlib.sha1(json.dumps({"m": m, "seed": seed, "voices": fest, "voice": v,
                                       "v": 1}).encode()).hexdigest()[:12]
        path = cache_dir() / f"festival-{v}-{key}.npz"
        if cache and path.is_file():
            out[v] = _load_corpus(path)
            continue
        utts = FV.synthesize(v, items[v], progress=progress)
        out[v] = [Utterance(_from_int16(_to_int16(u.audio)), u.phonemes) for u in utts]
        if cache and out[v]:
            _save_corpus(path, out[v])
    return out


def _to_int16(audio: np.ndarray) -> np.ndarray:
    return np.round(audio * 32767).clip(-32768, 32767).astype(np.int16)


def _from_int16(audio: np.ndarray) -> np.ndarray:
    return audio.astype(np.float32) / 32767.0


def _save_corpus(path: Path, utts: list[Utterance]) -> None:
    lens = np.array([len(u.audio) for u in utts])
    audio = np.concatenate([_to_int16(u.audio) for u in utts])
    ph = json.dumps([[(p.symbol, p.start, p.end) for p in u.phonemes] for u in utts])
    with atomic_path(path) as tmp:
        np.savez(tmp, audio=audio, lens=lens, phonemes=np.array(ph))


def _load_corpus(path: Path) -> list[Utterance]:
    z = np.load(path)
    audio = _from_int16(z["audio"])
    edges = np.concatenate([[0], np.cumsum(z["lens"])])
    phs = json.loads(str(z["phonemes"]))
    return [Utterance(audio[a:b], [Phoneme(*p) for p in ph]) for a, b, ph in zip(edges[:-1], edges[1:], phs)]


def rig_targets(phonemes: list[Phoneme], n: int) -> np.ndarray:
    """(n, 2) rig [open, width] at the model rate (50 Hz), each value the mean of two 100 Hz samples
    (the two feature frames a model frame stacks)."""
    from avatar.motion.rig import mouth_track

    m = mouth_track(phonemes, 2 * n, F.FRAME_RATE, calibrated=False)   # the design table
    return m.reshape(n, 2, 2).mean(axis=1)


# ----------------------------------------------------------------------------- augmentation
def _scale_phonemes(phonemes: list[Phoneme], factor: float, offset: float) -> list[Phoneme]:
    return [replace(p, start=p.start * factor + offset, end=p.end * factor + offset) for p in phonemes]


def _reverb(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import fftconvolve

    rt60 = rng.uniform(0.15, 0.7)
    n = int(rt60 * F.SAMPLE_RATE)
    t = np.arange(n) / F.SAMPLE_RATE
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)        # -60 dB at rt60
    ir[0] = 0.0
    ir *= rng.uniform(0.1, 0.5) / np.sqrt((ir ** 2).sum() + 1e-9)
    ir[0] = 1.0                                                    # direct path
    delay = int(rng.uniform(0.003, 0.02) * F.SAMPLE_RATE)
    ir = np.concatenate([ir[:1], np.zeros(delay), ir[1:]])
    return fftconvolve(a, ir)[: len(a)].astype(np.float32)


def _band_limit(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    if rng.random() < 0.5:   # telephone
        sos = butter(4, [300, 3400], btype="bandpass", fs=F.SAMPLE_RATE, output="sos")
    else:                    # laptop / cheap microphone: weak bass, dull top
        lo, hi = rng.uniform(100, 250), rng.uniform(4000, 7500)
        sos = butter(2, [lo, hi], btype="bandpass", fs=F.SAMPLE_RATE, output="sos")
    return sosfilt(sos, a).astype(np.float32)


def _noise(n: int, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n)
    kind = rng.integers(3)
    if kind == 1:    # pink-ish: integrate white noise spectrally (1/f power)
        spec = np.fft.rfft(white)
        spec /= np.sqrt(np.maximum(np.arange(len(spec)), 1))
        white = np.fft.irfft(spec, n)
    elif kind == 2:  # brown-ish hum + hiss
        white = np.cumsum(white)
        white -= np.convolve(white, np.ones(400) / 400, mode="same")
    return (white / (white.std() + 1e-9)).astype(np.float32)


def vtlp(power: np.ndarray, alpha: float) -> np.ndarray:
    """Vocal-tract length perturbation of a (T, bins) power spectrogram: energy at bin
    f moves to f * alpha (alpha > 1: shorter tract, e.g. a higher voice)."""
    bins = power.shape[1]
    src = np.arange(bins) / alpha
    lo = np.clip(np.floor(src).astype(int), 0, bins - 1)
    hi = np.clip(lo + 1, 0, bins - 1)
    w = (src - lo).clip(0, 1).astype(np.float32)
    out = power[:, lo] * (1 - w) + power[:, hi] * w
    out[:, src > bins - 1] = power[:, -1:].min() if len(power) else 0.0
    return out


def perturb(a: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> tuple[np.ndarray, float, float]:
    """Randomly augmented 16 kHz audio -> (features (T, N_MELS) at 100 Hz, speed, before): the
    audio was resampled by `speed` (pitch and tempo together: source time t is at t / speed)
    and `before` seconds of silence were put in front."""
    speed = int(rng.integers(17, 26)) / 20 if rng.random() < 0.7 * strength else 1.0   # small-ratio filters
    if speed != 1.0:   # resampling trick: pitch and tempo by `speed`; targets follow the phoneme times
        a = F.resample(a, int(round(F.SAMPLE_RATE * speed)), F.SAMPLE_RATE)
    before = float(rng.uniform(0.0, 0.6)) if rng.random() < 0.6 else 0.0     # extra silence
    after = float(rng.uniform(0.0, 0.6)) if rng.random() < 0.6 else 0.0
    a = np.concatenate([np.zeros(int(before * F.SAMPLE_RATE), np.float32), a,
                        np.zeros(int(after * F.SAMPLE_RATE), np.float32)])
    if rng.random() < 0.35 * strength:
        a = _reverb(a, rng)
    if rng.random() < 0.3 * strength:
        a = _band_limit(a, rng)
    peak = np.abs(a).max() + 1e-9
    a = a / peak * float(10 ** (rng.uniform(-30, 0) / 20))          # loudness
    if rng.random() < 0.5 * strength:
        snr = rng.uniform(5, 40)
        rms = np.sqrt(np.mean(a ** 2)) + 1e-9
        a = a + _noise(len(a), rng) * rms * 10 ** (-snr / 20)
    if rng.random() < 0.1 * strength:
        a = np.clip(a * rng.uniform(2, 6), -1, 1)                      # clipping
    a = np.clip(a, -1, 1).astype(np.float32)
    power = F.power_spectrogram(a)
    if rng.random() < 0.7 * strength:
        power = vtlp(power, float(rng.uniform(0.85, 1.25)))
    return F.normalize(np.log(np.maximum(power @ F.mel_filterbank(), F.LOG_FLOOR))), speed, before


def augment(utt: Utterance, rng: np.random.Generator, strength: float = 1.0,
            lead: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """One randomly augmented training example: (features (2n, N_MELS) at 100 Hz, targets (n, 2) at 50 Hz).
    lead: seconds the mouth runs ahead of the sound (targets from phoneme times moved earlier)."""
    feats, speed, before = perturb(utt.audio, rng, strength)
    n = len(feats) // 2
    return feats[: 2 * n], rig_targets(_scale_phonemes(utt.phonemes, 1.0 / speed, before - lead), n)


def augment_real(audio16k: np.ndarray, track: np.ndarray, fps: float, rng: np.random.Generator,
                 strength: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """perturb() for real footage: `track` (T, 2) measured targets at `fps` (NaN = unusable) ->
    (features (2n, N_MELS), targets (n, 2) at 50 Hz, NaN where unusable; silence added in front
    is a closed mouth at rest)."""
    feats, speed, before = perturb(audio16k, rng, strength)
    n = len(feats) // 2
    t_src = ((np.arange(n) * 2 + 0.5) / F.FRAME_RATE - before) * speed
    return feats[: 2 * n], resample_track(track, fps, t_src)


def resample_track(track: np.ndarray, fps: float, t: np.ndarray) -> np.ndarray:
    """Linear interpolation of a (T, 2) track sampled at i / fps, at times t: NaN next to an
    unusable frame, 0 before the track starts (silence in front), NaN after it ends."""
    pos = t * fps
    i0 = np.floor(pos).astype(int)
    w = (pos - i0)[:, None]
    pad = np.vstack([track, np.full((1, track.shape[1]), np.nan)])
    at = lambda i: pad[np.clip(i, 0, len(track))]  # noqa: E731  (index len(track) -> NaN row)
    with np.errstate(invalid="ignore"):
        out = np.where(w == 0, at(i0), at(i0) * (1 - w) + at(i0 + 1) * w)
    out[pos < 0] = 0.0
    out[pos > len(track) - 1] = np.nan
    return out.astype(np.float32)


def crop(feats: np.ndarray, targets: np.ndarray, frames: int, rng: np.random.Generator):
    """A random window of `frames` model frames: (feats (2*frames, M), targets (frames, 2), mask (frames,))."""
    n = len(targets)
    mask = np.ones(frames, np.float32)
    if n >= frames:
        s = int(rng.integers(0, n - frames + 1))
        return feats[2 * s: 2 * (s + frames)], targets[s: s + frames], mask
    pad = frames - n
    mask[n:] = 0
    feats = np.pad(feats, ((0, 2 * pad), (0, 0)), mode="edge")
    targets = np.pad(targets, ((0, pad), (0, 0)))
    return feats, targets, mask
