"""Narrate a whole presentation: one Speech per scene, and the narration files.

    speech = speak_to_files(presentation, Path("out.wav"))
    # -> out.wav, out.srt, out.vtt, out.timings.json
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from avatar.errors import AvatarError
from avatar.script.models import Presentation, Scene, VoiceSpec
from avatar.speech.audio import join, pad, save_wav, silent_speech, write_timings_json
from avatar.speech import markup
from avatar.speech.markup import plain_text
from avatar.types import Speech, Voice

EMPTY_SCENE_SECONDS = 2.0   # a scene with no narration and no duration
DEFAULT_RATE = 22050        # silence-only scenes (join() resamples silence losslessly)


class VoiceCache:
    """Voices loaded once per distinct VoiceSpec, shared by the scenes that use it."""

    def __init__(self, base_dir: Path | None = None, threads: int = 0, store: Path | None = None):
        self.base_dir, self.threads, self.store = base_dir, threads, store   # see avatar.speech.load_voice
        self._voices: dict[str, Voice] = {}

    def get(self, spec: VoiceSpec) -> Voice:
        from avatar.speech import load_voice

        key = spec.model_dump_json()
        if key not in self._voices:
            self._voices[key] = load_voice(spec, self.base_dir, self.threads, self.store)
        return self._voices[key]


def base_dir_of(presentation: Presentation) -> Path | None:
    """The folder relative paths in the presentation are relative to."""
    return Path(presentation.source).resolve().parent if presentation.source else None


def narrate_scene(presentation: Presentation, scene: Scene, *, voices: VoiceCache | None = None) -> Speech:
    """The scene's narration as Speech, with pause_before / pause_after silence around it.

    A scene with no spoken text is silence of scene.duration (else its [pause]s, else 2 s),
    pause_before / pause_after not added.
    """
    try:
        segments = markup.parse(scene.narration)
    except markup.MarkupError as e:
        where = next((i for i, s in enumerate(presentation.scenes) if s is scene), None)
        field = f"scenes[{where}].narration" if where is not None else "narration"
        raise AvatarError(str(e), path=presentation.source, field=field) from e
    if not markup.speaks(segments):
        pauses = sum(s.seconds for s in segments if isinstance(s, markup.Pause))
        speech = silent_speech(scene.seconds or pauses or EMPTY_SCENE_SECONDS, DEFAULT_RATE)
        speech.markers = [(s.name, 0.0) for s in segments if isinstance(s, markup.Marker)]
        return speech
    voices = voices or VoiceCache(base_dir_of(presentation))
    speech = voices.get(presentation.voice_for(scene)).synthesize(scene.narration)
    return pad(speech, scene.pause_before, scene.pause_after)


def speak_to_files(presentation: Presentation, out_wav: Path,
                   progress: Callable[[int, int], None] | None = None) -> Speech:
    """Narrate every scene, join them, and write OUT.wav, OUT.timings.json, OUT.srt and OUT.vtt.

    Captions follow presentation.captions (no .srt/.vtt when captions are disabled or
    `files` is off). progress(i, n) is called after scene i (1-based) of n.
    """
    from avatar.captions import build_cues, write_srt, write_vtt

    out_wav = Path(out_wav)
    voices = VoiceCache(base_dir_of(presentation))
    parts, n = [], len(presentation.scenes)
    for i, scene in enumerate(presentation.scenes, 1):
        parts.append(narrate_scene(presentation, scene, voices=voices))
        if progress is not None:
            progress(i, n)
    speech = join(parts)
    if not len(speech.audio):
        speech = Speech(np.zeros(1, np.float32), speech.sample_rate)
    save_wav(out_wav, speech)
    write_timings_json(out_wav.with_suffix(".timings.json"), speech)
    spec = presentation.captions
    if spec.enabled and spec.files:
        cues, k = [], 0   # per scene: a cue never runs across a scene change
        for part, scene in zip(parts, presentation.scenes):
            cues += build_cues(speech.words[k:k + len(part.words)], spec, plain_text(scene.narration))
            k += len(part.words)
        cues = [replace(c, end=min(c.end, max(c.start, cues[i + 1].start))) if i + 1 < len(cues) else c
                for i, c in enumerate(cues)]   # a scene's last cue stops where the next scene's begins
        write_srt(out_wav.with_suffix(".srt"), cues)
        write_vtt(out_wav.with_suffix(".vtt"), cues)
    return speech
