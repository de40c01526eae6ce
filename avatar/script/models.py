"""The one configuration model: a Presentation and everything it holds.

Defaults live here. YAML templates, Markdown decks and plain text all load into
these models (avatar.script.load); building them in code works the same way:

    from avatar.script.models import Presentation, Scene, Slide
    deck = Presentation(title="Hi", scenes=[Scene(narration="Hello there.")])
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Model(BaseModel):
    # Unknown keys are errors (the loader turns them into "did you mean" messages).
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# --------------------------------------------------------------------------- voice
class VoiceSpec(Model):
    """Which voice speaks the narration. `preset` names a file in voices/ (or a path)."""

    preset: Optional[str] = "joe"          # voices/<preset>.yaml supplies defaults for the fields below
    engine: Literal["piper", "coqui", "recorded"] = "piper"
    model: Optional[Path] = None           # piper: .onnx voice (default: the bundled en_US-joe-medium)
    speed: float = Field(1.0, gt=0.25, le=4.0)   # 1.0 = natural; piper length_scale = 1 / speed
    noise_scale: Optional[float] = Field(None, ge=0, le=2)   # piper phoneme variation (None = voice default)
    noise_w: Optional[float] = Field(None, ge=0, le=2)       # piper timing variation (None = voice default)
    speaker: Optional[int] = None          # multi-speaker models
    sentence_pause: float = Field(0.25, ge=0, le=5)  # silence between sentences, seconds
    lexicon: dict[str, str] = Field(default_factory=dict)  # word -> respelling, or [[ipa]] phonemes
    # recorded narration (engine: recorded)
    audio: Optional[Path] = None
    transcript: Optional[str] = None
    # coqui (engine: coqui)
    model_path: Optional[Path] = None
    config_path: Optional[Path] = None
    speaker_wav: Optional[Path] = None
    language: Optional[str] = None


# VoiceSpec fields that hold file paths (relative ones are relative to the file that wrote them)
VOICE_PATH_FIELDS = ("model", "audio", "model_path", "config_path", "speaker_wav")


# --------------------------------------------------------------------------- presenter
class RendererSpec(Model):
    name: Literal["warp", "diffusion"] = "warp"
    # diffusion only (see avatar.renderers.diffusion)
    base: Optional[str] = None             # local folder or hub id of an SD-1.5-class model
    controlnet: Optional[str] = None       # local folder or hub id of a MediaPipe-face ControlNet
    steps: int = Field(4, ge=1, le=100)
    strength: float = Field(0.35, gt=0, le=1)
    guidance: float = Field(1.0, ge=0, le=20)
    region: Literal["mouth", "face"] = "mouth"
    batch: int = Field(8, ge=1, le=64)
    allow_cpu: bool = False


Layout = Literal["pip", "side", "full", "none"]
Corner = Literal["bottom-right", "bottom-left", "top-right", "top-left"]


class Backdrop(Model):
    """What shows behind a presenter whose photo background is removed: an image or a colour."""

    image: Optional[Path] = None           # filled into the presenter's box (cropped to cover it)
    color: Optional[str] = None            # "#rrggbb" or "linear-gradient(#a, #b)"

    @model_validator(mode="after")
    def _one(self) -> "Backdrop":
        if (self.image is None) == (self.color is None):
            raise ValueError("give the background either `image: FILE` or `color: \"#rrggbb\"`")
        return self


class AvatarSpec(Model):
    """The presenter: photo, how it moves, and where it sits on screen."""

    photo: Optional[Path] = None           # None = the bundled public-domain astronaut photo
    face_index: int = Field(0, ge=0)       # which face when the photo has several (0 = largest)
    detector: Literal["mediapipe", "face-alignment"] = "mediapipe"  # face-alignment: extra [face-alignment]
    layout: Layout = "pip"                 # picture-in-picture, side panel, full screen, none (voice-over)
    position: Corner = "bottom-right"      # pip corner
    size: float = Field(0.32, gt=0.05, le=1.0)  # pip height as a fraction of the video height
    shape: Literal["circle", "rounded", "rect"] = "rounded"
    border: int = Field(4, ge=0, le=40)    # pixels, in the theme's accent colour
    # remove = selfie segmentation, the slide/theme behind; {image: office.jpg} / {color: "#1e1e2e"}: that behind
    background: Literal["keep", "remove"] | Backdrop = "keep"
    # auto: the phoneme rig when phoneme times are known (TTS, or a recording with a transcript),
    # else the audio model; see README "Lip sync" for the benchmark behind this choice
    motion: Literal["auto", "phonemes", "audio", "hybrid"] = "auto"
    still: bool = False                    # no head motion
    expression_scale: float = Field(1.0, ge=0, le=3)
    seed: int = 0
    appearance: Optional[Path] = None      # the presenter's own mouth interiors (`avatar face learn` -> me.face)
    lips_model: Optional[Path] = None      # audio-to-lips checkpoint (.safetensors) for audio/hybrid motion; None = bundled
    renderer: RendererSpec = Field(default_factory=RendererSpec)


# --------------------------------------------------------------------------- captions / theme
class CaptionSpec(Model):
    enabled: bool = True                   # build cues at all
    burn: bool = True                      # draw them into the video
    files: bool = True                     # write OUT.srt and OUT.vtt
    max_chars: int = Field(42, ge=10, le=80)   # per line
    max_lines: int = Field(2, ge=1, le=3)
    max_gap: float = Field(0.7, ge=0)      # a cue never spans a pause longer than this (s)
    min_duration: float = Field(1.0, ge=0)
    max_duration: float = Field(6.0, gt=0)
    highlight: bool = False                # highlight the word being spoken
    position: Literal["bottom", "top"] = "bottom"


class ThemeSpec(Model):
    """A theme by name (templates/themes/<name>.yaml) with optional field overrides."""

    name: str = "default"
    font: Optional[str] = None             # path or bundled font name
    font_bold: Optional[str] = None
    font_mono: Optional[str] = None
    background: Optional[str] = None       # "#rrggbb" or "linear-gradient(#a, #b)"
    background_image: Optional[Path] = None
    text_color: Optional[str] = None
    title_color: Optional[str] = None
    accent_color: Optional[str] = None
    logo: Optional[Path] = None
    logo_position: Optional[Corner] = None
    caption_font_size: Optional[int] = None
    caption_color: Optional[str] = None
    caption_style: Optional[Literal["outline", "box"]] = None


# --------------------------------------------------------------------------- music / loudness
def decibels(v):
    """-18, "-18dB", "-18 dB" -> -18.0 (a level in decibels)."""
    if isinstance(v, str):
        m = re.fullmatch(r"\s*([-+]?\d+(?:\.\d+)?)\s*(?:db)?\s*", v, re.IGNORECASE)
        if not m:
            raise ValueError(f"{v!r} is not a level in decibels (e.g. -18dB)")
        return float(m.group(1))
    return v


class MusicSpec(Model):
    """A music bed under the narration, mixed at assembly (a changed bed re-renders no video)."""

    file: Path                             # any audio file PyAV decodes (mp3, wav, flac, m4a, ogg)
    volume: float = Field(-18.0, ge=-60, le=0)   # dB gain of the bed where nobody speaks ("-18dB" works too)
    duck: float = Field(-12.0, ge=-60, le=0)     # dB more while the narration speaks (from the word times)
    fade: float = Field(1.0, ge=0, le=30)        # seconds of fade in at the start and out at the end
    attack: float = Field(0.15, ge=0, le=5)      # seconds the dip takes, ending at the first word
    release: float = Field(0.6, ge=0, le=10)     # seconds the bed takes to come back after a word
    loop: bool = True                      # repeat the bed to the end (else it stops, faded, where it ends)
    start: float = Field(0.0, ge=0)        # seconds into the bed file where it starts

    @field_validator("volume", "duck", mode="before")
    @classmethod
    def _db(cls, v):
        return decibels(v)


# --------------------------------------------------------------------------- slides / scenes
SlideLayout = Literal["title", "bullets", "image", "image_text", "two_columns", "quote", "code", "blank", "pdf",
                      "video"]


# What each slide layout draws, besides the title (every layout may have one: it names the
# slide's chapter). A slide that gives content its layout does not draw is an error, and a
# slide with no `layout` takes the one its content needs (bullets: "bullets", ...).
LAYOUT_CONTENT: dict[str, tuple[str, ...]] = {
    "title": ("subtitle", "text"),
    "bullets": ("text", "bullets"),
    "image": ("image", "fit"),
    "image_text": ("image", "fit", "text", "bullets"),
    "two_columns": ("left", "right"),
    "quote": ("quote", "text", "author"),
    "code": ("code", "language"),
    "blank": (),
    "pdf": ("pdf", "page", "pages"),
    "video": ("video", "fit", "start", "end", "loop", "audio"),
}
LAYOUT_CONTENT_FIELDS = frozenset(k for keys in LAYOUT_CONTENT.values() for k in keys)


def slide_layout_for(given: dict) -> str:
    """The layout a slide's content needs when the slide names none (keys with a value)."""
    has = {k for k, v in given.items() if v not in (None, "", [], ())}
    for layout, keys in (("video", ("video",)), ("pdf", ("pdf",)), ("code", ("code",)), ("quote", ("quote",)),
                         ("two_columns", ("left", "right"))):
        if has & set(keys):
            return layout
    if "image" in has:
        return "image_text" if has & {"bullets", "text"} else "image"
    return "bullets" if "bullets" in has else "title"


class Slide(Model):
    layout: SlideLayout = "title"          # none given: the one the content needs (slide_layout_for)
    title: Optional[str] = None
    subtitle: Optional[str] = None
    bullets: list[str] = Field(default_factory=list)
    reveal: bool = False                   # bullets (or both columns' items) appear one by one with the narration
    text: Optional[str] = None
    image: Optional[Path] = None
    fit: Literal["fit", "fill", "contain", "cover"] = "fit"   # contain = fit (whole picture), cover = fill (cropped)
    left: list[str] = Field(default_factory=list)    # two_columns
    right: list[str] = Field(default_factory=list)
    quote: Optional[str] = None
    author: Optional[str] = None
    code: Optional[str] = None
    language: Optional[str] = None
    pdf: Optional[Path] = None
    page: Optional[int] = Field(None, ge=1)  # 1-based
    pages: list[int] = Field(default_factory=list)  # pdf build steps: pages[0], then the next one at each reveal step
    background: Optional[str] = None       # per-slide background override
    # video (a clip or screencast playing in the content area; avatar.compose.video_slide)
    video: Optional[Path] = None
    start: float = Field(0.0, ge=0)        # seconds into the clip
    end: Optional[float] = Field(None, gt=0)   # None = the clip's end
    loop: bool = False                     # start again when the clip ends before the scene (else hold its last frame)
    audio: Literal["mute", "mix"] = "mute"   # mix: the clip's sound under the narration

    @model_validator(mode="before")
    @classmethod
    def _layout_from_content(cls, data):
        if isinstance(data, dict) and "layout" not in data:
            data = {**data, "layout": slide_layout_for(data)}
        return data

    @model_validator(mode="after")
    def _content_shown(self) -> "Slide":
        shown = LAYOUT_CONTENT.get(self.layout, ())
        for name in [n for n in type(self).model_fields if n in LAYOUT_CONTENT_FIELDS and n not in shown]:
            # given: other than the default (a dump and reload sets every field)
            if getattr(self, name) not in (None, "", [], type(self).model_fields[name].get_default(
                    call_default_factory=True)):
                others = [lay for lay, keys in LAYOUT_CONTENT.items() if name in keys]
                raise ValueError(f"a {self.layout} slide does not show `{name}`: give the slide a layout that does "
                                 f"({', '.join(others)}), or remove `{name}`")
        return self

    @model_validator(mode="after")
    def _video(self) -> "Slide":
        if self.layout == "video" and self.video is None:
            raise ValueError("a video slide needs `video: FILE`")
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"end ({self.end:g} s) must come after start ({self.start:g} s)")
        return self

    @property
    def reveal_items(self) -> list[str]:
        """What `reveal` shows one by one: the bullets, or for two_columns the left column then the right."""
        if self.layout == "pdf":   # steps with no words to match: at the [next] markers, else spread evenly
            return [""] * max(0, len(self.pages) - 1)
        return [*self.left, *self.right] if self.layout == "two_columns" else list(self.bullets)

    @field_validator("pages")
    @classmethod
    def _pages(cls, v: list[int]) -> list[int]:
        if any(p < 1 for p in v):
            raise ValueError("pages are 1-based: every page must be 1 or more")
        return v

    @model_validator(mode="after")
    def _page_or_pages(self) -> "Slide":
        if self.pages and self.page is not None:
            raise ValueError("give page: (one page) or pages: (build steps), not both")
        return self


class Scene(Model):
    slide: Optional[Slide] = None          # None = no slide (plain text input, full-screen avatar)
    narration: str = ""                    # may hold [pause 0.5s] and [next] markup
    pause_before: float = Field(0.0, ge=0, le=30)
    pause_after: float = Field(0.4, ge=0, le=30)
    voice: Optional[VoiceSpec] = None      # None = the presentation's voice
    avatar: Optional[AvatarSpec] = None    # None = the presentation's avatar
    transition: Optional[Literal["cut", "crossfade"]] = None   # into this scene; None = presentation default
    # seconds: minimum length for scenes with no narration; video slides: "clip" (the clip's span, or
    # the narration if longer; the default without narration) or "narration" (the default with it)
    duration: Optional[Annotated[float, Field(gt=0)] | Literal["clip", "narration"]] = None
    music: Optional[MusicSpec | Literal[False]] = None   # None = the presentation's music; false = none here

    @property
    def seconds(self) -> Optional[float]:
        """`duration` when it is a number of seconds (None for none, "clip" or "narration")."""
        return None if isinstance(self.duration, str) else self.duration

    @model_validator(mode="after")
    def _not_empty(self) -> "Scene":
        if not self.narration.strip() and self.slide is None and self.duration is None:
            raise ValueError("scene is empty: give it narration, a slide, or a duration")
        return self


_SIZE_PRESETS = {
    "16:9": (1280, 720), "720p": (1280, 720), "1080p": (1920, 1080), "9:16": (720, 1280),
    "1:1": (1080, 1080), "4:3": (1024, 768),
}


class Presentation(Model):
    title: str = "Untitled presentation"
    size: tuple[int, int] = (1280, 720)    # "1280x720", "16:9", "1080p", "9:16", "1:1" also accepted
    fps: int = Field(25, ge=1, le=60)
    theme: ThemeSpec = Field(default_factory=ThemeSpec)
    avatar: AvatarSpec = Field(default_factory=AvatarSpec)
    voice: VoiceSpec = Field(default_factory=VoiceSpec)
    captions: CaptionSpec = Field(default_factory=CaptionSpec)
    transition: Literal["cut", "crossfade"] = "crossfade"
    transition_duration: float = Field(0.4, ge=0, le=3)
    badge: bool = False                    # visible "AI-generated" mark
    music: Optional[MusicSpec] = None      # a bed under the whole video (scenes may override it)
    loudness: Optional[float] = Field(-16.0, ge=-40, le=-5)   # integrated LUFS of the final mix; None = as is
    true_peak: float = Field(-1.0, ge=-9, le=0)   # dBTP ceiling of the final mix (with loudness)
    chapters: bool = True                  # slide titles -> MP4 chapters and OUT.chapters.vtt
    scenes: list[Scene] = Field(min_length=1)
    source: Optional[Path] = Field(None, exclude=True)  # the file this was loaded from, if any

    @field_validator("size", mode="before")
    @classmethod
    def _size(cls, v):
        if isinstance(v, str):
            s = v.strip().lower()
            if s in _SIZE_PRESETS:
                return _SIZE_PRESETS[s]
            m = re.fullmatch(r"(\d+)\s*[x×]\s*(\d+)", s)
            if not m:
                raise ValueError(f"size {v!r}: use WIDTHxHEIGHT (e.g. 1280x720) or one of {', '.join(_SIZE_PRESETS)}")
            v = (int(m.group(1)), int(m.group(2)))
        return v

    @field_validator("size")
    @classmethod
    def _even(cls, v):
        w, h = v
        if not (64 <= w <= 7680 and 64 <= h <= 4320):
            raise ValueError(f"size {w}x{h} is out of range (64..7680 x 64..4320)")
        return (w - w % 2, h - h % 2)   # H.264 yuv420p needs even dimensions

    def voice_for(self, scene: Scene) -> VoiceSpec:
        return scene.voice or self.voice

    def avatar_for(self, scene: Scene) -> AvatarSpec:
        return scene.avatar or self.avatar

    def transition_for(self, scene: Scene) -> str:
        return scene.transition or self.transition
