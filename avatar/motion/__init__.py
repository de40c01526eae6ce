"""Motion: phonemes or audio -> per-frame mouth, head pose, blinks and brows (avatar.types.Motion).

    from avatar.motion import phoneme_motion
    motion = phoneme_motion(speech, fps=25, seed=0)
"""
from __future__ import annotations

from avatar.motion.idle import add_idle
from avatar.motion.rig import mouth_track
from avatar.types import Motion, Speech


def phoneme_motion(speech: Speech, fps: float, *, seed: int = 0, still: bool = False,
                   expression_scale: float = 1.0) -> Motion:
    """Viseme-rig lip sync from the Speech's phoneme timings, plus idle motion."""
    n = Motion.frame_count(speech.duration, fps)
    mouth = mouth_track(speech.phonemes, n, fps)
    return add_idle(mouth, speech, fps, seed=seed, still=still, expression_scale=expression_scale)


__all__ = ["phoneme_motion", "add_idle", "mouth_track"]
