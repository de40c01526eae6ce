"""A script's size at a glance, without synthesising any speech (`avatar check`)."""
from __future__ import annotations

from avatar.script.models import Presentation


def summarize(deck: Presentation) -> dict:
    """Scenes, words and an estimate of the duration (2.6 words/s plus pauses), without TTS."""
    from avatar.speech.markup import Pause, parse

    words, pauses = 0, 0.0
    for sc in deck.scenes:
        for seg in parse(sc.narration):
            if isinstance(seg, str):
                words += len(seg.split())
            elif isinstance(seg, Pause):
                pauses += seg.seconds
        pauses += sc.pause_before + sc.pause_after
        if not sc.narration.strip():
            pauses += sc.seconds or 2.0
    speed = deck.voice.speed or 1.0
    return {"scenes": len(deck.scenes), "slides": sum(s.slide is not None for s in deck.scenes),
            "words": words, "duration": words / (2.6 * speed) + pauses}
