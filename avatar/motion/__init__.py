"""Motion: phonemes or audio -> per-frame mouth, head pose, blinks and brows (avatar.types.Motion).

    from avatar.motion import phoneme_motion
    motion = phoneme_motion(speech, fps=25, seed=0)
"""
from __future__ import annotations

import numpy as np

from avatar.motion.idle import add_idle
from avatar.motion.rig import mouth_track, tongue_track
from typing import TYPE_CHECKING

from avatar.types import Motion, Phoneme, Speech

if TYPE_CHECKING:
    from avatar.script.models import AvatarSpec


SILENT_PEAK = 10 ** (-45 / 20)   # a recording never louder than -45 dBFS has no speech to recognise


def phoneme_motion(speech: Speech, fps: float, *, seed: int = 0, still: bool = False,
                   expression_scale: float = 1.0) -> Motion:
    """Viseme-rig lip sync from the Speech's phoneme timings, plus idle motion."""
    n = Motion.frame_count(speech.duration, fps)
    mouth = mouth_track(speech.phonemes, n, fps)
    m = add_idle(mouth, speech, fps, seed=seed, still=still, expression_scale=expression_scale)
    m.tongue = tongue_track(speech.phonemes, n, fps)
    return m


def make_motion(speech: Speech, fps: float, spec: AvatarSpec, n_frames: int | None = None) -> Motion:
    """Mouth from the chosen motion source, with blinks, head sway and brows layered on top.

    phonemes: the viseme rig on the speech's phoneme times; audio: the audio-to-lips model;
    hybrid: the model's dynamics with closures forced on p/b/m; auto: the rig, on the
    speech's phoneme times or, for a recording without them, on the phones pocketsphinx
    recognises in it (on held-out real speakers the refitted rig on recognised phones
    scores above the audio model: README "Lip sync"); the audio model if none are found."""
    n = n_frames or Motion.frame_count(speech.duration, fps)
    kw = dict(seed=spec.seed, still=spec.still, expression_scale=spec.expression_scale)
    if hasattr(speech.audio, "pieces"):   # a long recording (avatar.speech.recorded.RecordingAudio)
        return _streamed_motion(speech, fps, spec, n, kw)
    source = spec.motion
    if source == "auto":
        if not speech.phonemes and len(speech.audio) and np.abs(speech.audio).max() > SILENT_PEAK:
            speech = _with_recognised_phones(speech)
        source = "phonemes" if speech.phonemes else "audio"
    if source == "phonemes" or not len(speech.audio):
        m = phoneme_motion(speech, fps, **kw)
    else:
        from avatar.motion.audio_model import audio_motion, load_model

        model = load_model(spec.lips_model) if spec.lips_model else None   # None: the bundled checkpoint
        m = audio_motion(speech, fps, hybrid=source == "hybrid", model=model, **kw)
    return m if len(m) == n else _refit(m, n, speech, fps, kw)


def _streamed_motion(speech: Speech, fps: float, spec: AvatarSpec, n: int, kw: dict) -> Motion:
    """make_motion for a recording streamed in pieces cut in its pauses: one piece in memory at
    a time. 'auto' recognises each piece's phones (times made absolute), the audio model predicts
    each piece's frames (its features normalised over the piece, its GRU starting afresh: the
    pieces join in a pause, where the mouth is shut); the rig and the idle motion see the whole
    (small) phoneme list."""
    from dataclasses import replace

    audio, sr = speech.audio, speech.sample_rate
    source, phonemes = spec.motion, list(speech.phonemes)
    if source == "auto":
        if not phonemes:
            for t0, piece in audio.pieces():
                if len(piece) and np.abs(piece).max() > SILENT_PEAK:
                    phonemes += [Phoneme(p.symbol, p.start + t0, p.end + t0)
                                 for p in _with_recognised_phones(Speech(piece, sr)).phonemes]
        source = "phonemes" if phonemes else "audio"
    speech = replace(speech, phonemes=phonemes)
    if source == "phonemes":
        m = phoneme_motion(speech, fps, **kw)
    else:
        from avatar.motion.audio_model import hybrid_mouth, load_model

        model = load_model(spec.lips_model) if spec.lips_model else load_model()
        mouth = np.zeros((n, 2), np.float32)
        for t0, piece in audio.pieces():
            i0 = min(n, int(np.ceil(t0 * fps - 1e-9)))
            i1 = min(n, int(np.ceil((t0 + len(piece) / sr) * fps - 1e-9)))
            if i1 > i0:
                mouth[i0:i1] = model.predict(piece, sr, i1 - i0, fps, start=i0 / fps - t0)
        if source == "hybrid" and phonemes:
            mouth = hybrid_mouth(mouth, phonemes, n, fps, lead=model.lead)
        m = add_idle(mouth, speech, fps, **kw)
    return m if len(m) == n else _refit(m, n, speech, fps, kw)


def _with_recognised_phones(speech: Speech) -> Speech:
    """The Speech with phoneme times from pocketsphinx's recognition of its audio (words left
    as they were: recognised words are too often wrong for captions)."""
    import warnings
    from dataclasses import replace

    from avatar.speech.align import recognize

    with warnings.catch_warnings():   # its words are guesses: a "may not match" warning says nothing
        warnings.simplefilter("ignore")
        heard = recognize(speech.audio, speech.sample_rate)
    return replace(speech, phonemes=list(heard.phonemes))


def _refit(m: Motion, n: int, speech: Speech, fps: float, kw: dict) -> Motion:
    """`m` cut or held to n frames (the scene's own length): idle motion made again for n, the
    mouth and the tongue carried over."""
    out = add_idle(_fit(m.mouth, n), speech, fps, **kw)
    out.tongue = _fit(m.tongue, n)
    return out


def _fit(a: np.ndarray, n: int) -> np.ndarray:
    if len(a) >= n:
        return a[:n]
    return np.concatenate([a, np.repeat(a[-1:], n - len(a), axis=0)])


__all__ = ["phoneme_motion", "make_motion", "add_idle", "mouth_track"]
