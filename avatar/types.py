"""The small data types that flow between the pipeline's stages.

script/ -> Presentation  (avatar.script.models)
speech/ -> Speech        (audio + phoneme and word timings)
motion/ -> Motion        (per-frame mouth, head, blink, brow parameters)
face/   -> Identity      (photo + 478-point mesh + masks)
render/ -> Iterator[np.ndarray] frames (Renderer protocol)

Only numpy here: importing this module must stay cheap.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Phoneme:
    symbol: str       # IPA symbol as given by espeak/Piper (e.g. "p", "ɑ", "ʊ"); " " = word gap, "_" = pause
    start: float      # seconds from the start of the Speech
    end: float


@dataclass(frozen=True)
class Word:
    text: str         # the word as written in the narration (punctuation stripped)
    start: float
    end: float


@dataclass(frozen=True)
class Cue:
    """One caption: up to CaptionSpec.max_lines lines of text shown from start to end (seconds)."""

    start: float
    end: float
    lines: tuple[str, ...]
    words: tuple[Word, ...] = ()   # the words in this cue, with their own times (for highlighting)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass
class Speech:
    """Narration audio with exact timings. Audio is mono float32 in [-1, 1]."""

    audio: np.ndarray
    sample_rate: int
    phonemes: list[Phoneme] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    # markers from the narration markup, e.g. [next] -> ("next", time in seconds)
    markers: list[tuple[str, float]] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return len(self.audio) / float(self.sample_rate)


EYE_CORNERS = (33, 263)   # MediaPipe face-mesh indices of the outer eye corners (image left, right)


def eye_distance(lm: np.ndarray) -> np.ndarray:
    """Outer-eye-corner distance (x, y) of (..., 478, >=2) landmarks, in their units: the
    length unit of MOUTH_PARAMS and of the face geometry. A 0-d array for one mesh."""
    d = np.asarray(lm)[..., EYE_CORNERS[1], :2] - np.asarray(lm)[..., EYE_CORNERS[0], :2]
    return np.hypot(d[..., 0], d[..., 1])


# Motion: one row per video frame. Units are chosen so they can be *measured* on
# real video with MediaPipe (see avatar.face.measure), which is what lets the
# audio-to-landmark model train on real footage and be evaluated against it.
MOUTH_PARAMS = ("open", "width")
# open : inner-lip gap / distance between the outer eye corners (0 = lips closed, ~0.35 = wide open)
# width: (mouth-corner distance - rest distance) / outer-eye-corner distance
#        (negative = rounded "oo", positive = spread "ee", 0 = rest)


@dataclass
class Motion:
    fps: float
    mouth: np.ndarray   # (T, 2) float32, columns MOUTH_PARAMS
    head: np.ndarray    # (T, 3) float32, yaw, pitch, roll in degrees
    blink: np.ndarray   # (T,) float32, eyelid closure 0 (open) .. 1 (closed)
    brow: np.ndarray    # (T,) float32, eyebrow raise 0 (rest) .. 1 (raised)
    # (T,) float32, how far the tongue comes forward into view: 0 (lying low behind the lower
    # teeth) .. 1 (tip at the upper teeth, as in "th"); None = 0 throughout (the audio model)
    tongue: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.mouth)
        self.mouth = np.asarray(self.mouth, np.float32).reshape(n, len(MOUTH_PARAMS))
        self.head = np.asarray(self.head, np.float32).reshape(n, 3)
        self.blink = np.asarray(self.blink, np.float32).reshape(n)
        self.brow = np.asarray(self.brow, np.float32).reshape(n)
        self.tongue = (np.zeros(n, np.float32) if self.tongue is None
                       else np.asarray(self.tongue, np.float32).reshape(n))

    def __len__(self) -> int:
        return len(self.mouth)

    @property
    def duration(self) -> float:
        return len(self) / self.fps

    @classmethod
    def rest(cls, frames: int, fps: float) -> "Motion":
        z = np.zeros
        return cls(fps, z((frames, 2)), z((frames, 3)), z(frames), z(frames))

    @staticmethod
    def frame_count(duration: float, fps: float) -> int:
        """Frames needed to cover `duration` seconds: the one rounding rule used everywhere."""
        return max(1, int(round(duration * fps)))


@dataclass
class Identity:
    """A presenter prepared from one photo (see avatar.face)."""

    image: np.ndarray        # (H, W, 3) uint8 RGB, full photo, EXIF orientation applied
    landmarks: np.ndarray    # (478, 3) float32: x, y in pixels of `image`, z in pixels (MediaPipe scale)
    face_box: tuple[int, int, int, int]  # x0, y0, x1, y1: square face crop with margin, inside the image
    face_mask: np.ndarray    # (H, W) float32 0..1, face region (mesh hull), feathered
    person_mask: np.ndarray  # (H, W) float32 0..1, selfie segmentation (person vs background)
    source: str = ""         # path or description of the photo

    @property
    def eye_distance(self) -> float:
        """Pixels between the outer eye corners (mesh points 33 and 263)."""
        return float(eye_distance(self.landmarks))


@runtime_checkable
class Renderer(Protocol):
    """Turns an Identity and a Motion into RGB uint8 frames, one per Motion row, lazily."""

    def frames(self, identity: Identity, motion: Motion, *, crop: bool = False) -> Iterator[np.ndarray]:
        ...


@runtime_checkable
class Voice(Protocol):
    def synthesize(self, text: str) -> Speech:
        ...
