"""Execute one ScenePlan: plan in, segment out (a pure step; nothing but the plan is read).

    info = execute(plan, segment_path)       # writes the H.264/FLAC segment, returns its facts

The steps (the presenter comes first, then the rest in order):
 1. narration    the scene's Speech (voice from the plan: preset and lexicon already applied)
 2. captions     cues from the word times (burned in when captions.burn)
 3. presenter    the Identity from the photo (none when the layout shows no presenter)
 4. motion       mouth, blinks, head motion at the video's fps
 5. face frames  the renderer animates the photo (a generator: frames are streamed)
 6. compose      slide, presenter, captions, badge -> video frames
 7. transition   crossfade from the previous scene's closing frame (rebuilt from the plan)
 8. encode       H.264/FLAC segment (lossless audio: the assembly encodes the AAC), written atomically
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from avatar.build.plan import ScenePlan, theme_from_json
from avatar.errors import AvatarError
from avatar.types import Motion, Speech


@dataclass
class SceneInfo:
    """What assembly needs of a finished segment (stored beside it in the cache)."""

    duration: float
    frames: int
    sample_rate: int
    text: str                               # the narration as plain text (caption display)
    words: list[tuple[str, float, float]]   # (word, start, end) seconds from the scene start

    def to_dict(self) -> dict:
        return {"duration": self.duration, "frames": self.frames, "sample_rate": self.sample_rate,
                "text": self.text, "words": [list(w) for w in self.words]}

    @classmethod
    def from_dict(cls, d: dict) -> "SceneInfo":
        return cls(float(d["duration"]), int(d["frames"]), int(d["sample_rate"]), str(d["text"]),
                   [(str(t), float(s), float(e)) for t, s, e in d["words"]])


def scene_narration(deck, scene, voices: Path | None = None) -> Speech:
    """The scene's Speech: its narration, and for a video slide the clip's span and sound.
    Piper runs one thread: a scene's narration is made beside rendering (in a scene worker
    beside the others, or ahead of the next scene in a serial run), where a second thread
    finds no free core and cost 5-8% more CPU; one count for both keeps them identical.
    voices: the cache's folder of prepared Piper voices (SceneCache.voices; the same speech)."""
    from avatar.speech.narrate import VoiceCache, base_dir_of, narrate_scene

    speech = narrate_scene(deck, scene, voices=VoiceCache(base_dir_of(deck), threads=1, store=voices))
    if scene.slide is not None and scene.slide.layout == "video":
        from avatar.compose.video_slide import scene_speech

        speech = scene_speech(scene, speech, deck.fps)
    return speech


def identity_for(spec, store=None):
    """The presenter of a scene (None when its layout shows no presenter); store: an
    avatar.face.store.IdentityStore (the photo measured once for all workers and runs)."""
    from avatar.face import load_identity

    if spec.layout == "none":
        return None
    return load_identity(spec.photo, face_index=spec.face_index, detector=spec.detector, store=store)


def plan_narration(plan: ScenePlan, voices: Path | None = None) -> Speech:
    """Step 1 alone: the narration of a plan (what execute() synthesises first)."""
    deck = plan.presentation()
    return scene_narration(deck, deck.scenes[0], voices)


def execute(plan: ScenePlan, segment: Path, progress: Callable[[int], None] | None = None,
            narration: Callable[[], Speech] | None = None, identities=None,
            on_narration: Callable[[SceneInfo, Speech], None] | None = None, voices: Path | None = None) -> SceneInfo:
    """Render one scene to `segment` (atomic). AvatarErrors name the scene.

    narration: gives this plan's plan_narration(plan) made elsewhere (e.g. synthesised ahead
    in a helper thread while the previous scene rendered); None: synthesised here.
    identities: an avatar.face.store.IdentityStore, voices: a folder of prepared Piper voices
    (avatar.speech.model_store); the same output with or without either.
    on_narration(info, speech): called once the narration is made, before any frame: the
    SceneInfo that execute() will return, and the Speech whose audio the segment gets."""
    try:
        return _execute(plan, Path(segment), progress, narration, identities, on_narration, voices)
    except AvatarError as e:
        raise AvatarError(f"{plan.name}: {e}") from None


def _execute(plan: ScenePlan, segment: Path, progress, narration, identities, on_narration, voices) -> SceneInfo:
    from avatar.captions import build_cues
    from avatar.compose import SceneComposer, crossfade
    from avatar.motion import make_motion
    from avatar.renderers import get_renderer
    from avatar.speech.markup import plain_text
    from avatar.video import write_mp4
    from avatar.video.tags import metadata

    deck = plan.presentation()
    scene, av, fps = deck.scenes[0], deck.avatar, deck.fps
    # 3. presenter first: where the photo is measured (once per cache), that overlaps the voice's
    # preparation by another worker of a parallel render (avatar.build.run), which the
    # narration may wait for
    identity = identity_for(av, identities)
    # 1. narration
    speech = narration() if narration is not None else scene_narration(deck, scene, voices)
    n = Motion.frame_count(speech.duration, fps)
    # 2. captions
    text = plain_text(scene.narration)
    cues = build_cues(speech.words, deck.captions, text=text) if deck.captions.enabled else []
    info = SceneInfo(n / fps, n, speech.sample_rate, text, [(w.text, w.start, w.end) for w in speech.words])
    if on_narration is not None:
        on_narration(info, speech)
    composer = SceneComposer(deck, scene, identity, theme=theme_from_json(plan.theme), name=plan.name)
    crop = composer.layout.mode == "pip"   # pip shows the face crop; side/full the whole photo
    composer = shown_presenter(composer, crop)
    face_frames = None
    if composer.needs_face:
        # 4. motion, 5. face frames
        motion = make_motion(speech, fps, av, n)
        face_frames = get_renderer(av.renderer, av.appearance).frames(composer.identity, motion, crop=crop)
    # 6. compose
    frames = composer.video_frames(face_frames, speech, cues if deck.captions.burn else [], n, face_is_crop=crop)
    # 7. transition
    keyframes: tuple[int, ...] = ()
    if plan.previous is not None:
        fade = int(round(deck.transition_duration * fps))
        frames = crossfade(closing_frame(plan.previous, identities), frames, fade)
        keyframes = (fade,)   # a clean picture once the fade is over
    # 8. encode
    write_mp4(segment, frames, fps=fps, audio=speech.audio, sample_rate=speech.sample_rate,
              metadata=metadata(), progress=progress, keyframes=keyframes, audio_codec="flac")
    return info


RENDER_MARGIN = 2.0   # photo pixels rendered per video pixel of the presenter's box, at most


def shown_presenter(composer, crop: bool):
    """The composer with its presenter scaled down to RENDER_MARGIN times what the avatar box shows
    of the photo, when the photo has more pixels than that (a 12 MP phone photo in a 1080p pip
    box: its 1500 px face rendered at about 520 px, an eighth of the pixels, and shrunk into
    the box as before); the composer itself otherwise. The same for the scene and its closing
    frame (the next scene's crossfade starts from it)."""
    from avatar.face import scaled

    s = composer.shown_scale(crop) * RENDER_MARGIN
    if not 0 < s < 1:
        return composer
    return type(composer)(composer.p, composer.scene, scaled(composer.identity, s), base_dir=composer.base_dir,
                          theme=composer.theme, name=composer.name)


def closing_frame(look: dict, identities=None) -> np.ndarray:
    """A scene's closing picture (all bullets shown, presenter at rest), from its plan's inputs alone."""
    from avatar.compose import SceneComposer
    from avatar.script.models import Presentation

    deck = Presentation.model_validate(look["deck"])
    scene = deck.scenes[0]
    composer = SceneComposer(deck, scene, identity_for(deck.avatar, identities), theme=theme_from_json(look["theme"]))
    crop = composer.layout.mode == "pip"
    composer = shown_presenter(composer, crop)
    bullets = len(scene.slide.reveal_items) if scene.slide else 0
    shown = Speech(np.zeros(0, np.float32), 16000, markers=[("next", 0.0)] * bullets)
    return next(iter(composer.frames(None, shown, (), 1, face_is_crop=crop)))
