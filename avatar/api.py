"""The Python API: what `import avatar` offers (re-exported lazily by avatar/__init__.py).

    deck = avatar.load("talk.yaml")
    avatar.render(deck, "talk.mp4", on_progress=print)
    avatar.say("Hello!", face="me.jpg", out="hello.mp4")
    avatar.speak("talk.yaml", "talk.wav")

    presenter = avatar.Presenter(face="me.jpg")      # voice and face loaded once
    clip = presenter.say("Hello there.")              # frames (iterator), audio, word times
    presenter.say_to_file("And goodbye.", "bye.mp4")
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from avatar.errors import AvatarError
from avatar.files import check_target
from avatar.progress import ProgressCallback, report
from avatar.script.models import AvatarSpec, Presentation, VoiceSpec

SCRIPT_SUFFIXES = {".yaml", ".yml", ".md", ".markdown", ".txt", ".pptx", ".odp", ".ppt"}


@dataclass
class Result:
    out: Path
    duration: float
    frames: int
    seconds: float
    scenes: int = 1
    rendered: int = 1

    def summary(self) -> str:
        size = self.out.stat().st_size / 1e6 if self.out.exists() else 0
        rtf = self.seconds / max(self.duration, 1e-6)
        reused = f", {self.scenes - self.rendered} reused from cache" if self.scenes != self.rendered else ""
        return (f"wrote {self.out}: {self.duration:.1f} s, {self.frames} frames, {self.scenes} scene(s){reused}, "
                f"{size:.1f} MB, took {self.seconds:.1f} s (real-time factor {rtf:.2f})")


@dataclass
class VoiceInfo:
    name: str
    description: str
    path: Path


def load(path: str | Path) -> Presentation:
    """A script file (YAML, Markdown, plain text) -> Presentation."""
    from avatar.script import load as _load

    return _load(path)


def list_voices() -> list[VoiceInfo]:
    """The voice presets shipped in voices/."""
    from avatar.speech.presets import list_presets

    return [VoiceInfo(n, d, p) for n, d, p in list_presets()]


def _from_options(model, data: dict, options: dict[str, str]):
    """model.model_validate(data); a bad value becomes a one-line AvatarError naming its option.

    options: pydantic error location ("motion", "renderer.name") -> option name ("--motion")."""
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        loc = ".".join(map(str, err["loc"]))
        raise AvatarError(err["msg"].removeprefix("Value error, "), field=options.get(loc, loc)) from None


def _script_or_text(script: str | Path | Presentation) -> Presentation:
    from avatar.script import from_text, load as _load

    if isinstance(script, Presentation):
        return script
    p = Path(str(script))
    if p.suffix.lower() in SCRIPT_SUFFIXES or _exists(p):
        return _load(p)
    return from_text(str(script))


def _exists(p: Path) -> bool:
    """Whether `p` names an existing file; False for text that cannot be a path (too long, NUL)."""
    try:
        return p.exists()
    except (OSError, ValueError):
        return False


# --------------------------------------------------------------------------- speak
def speak(script: str | Path | Presentation, out: str | Path, *, voice: str | None = None,
          on_progress: ProgressCallback | None = None):
    """Narrate a script to OUT.wav + OUT.srt + OUT.vtt + OUT.timings.json. Returns the Speech."""
    from avatar.speech.narrate import speak_to_files

    deck = _script_or_text(script)
    if voice:
        deck = deck.model_copy(update={"voice": VoiceSpec(preset=voice),
                                       "scenes": [s.model_copy(update={"voice": None}) for s in deck.scenes]})
    out = Path(out)
    if out.suffix.lower() != ".wav":
        raise AvatarError(f"{out}: the output of speak is a .wav file (e.g. -o narration.wav)")
    check_target(out)
    return speak_to_files(deck, out, progress=lambda i, n: report(on_progress, "narration", i, n))


# --------------------------------------------------------------------------- say / Presenter
@dataclass
class Clip:
    """One talking-head clip. `frames` is an iterator (frames are made as it is read). `audio` is
    an array, or for a recording longer than avatar.speech.recorded.PIECE_SECONDS a RecordingAudio
    read from a temporary file in blocks (np.asarray(clip.audio) gives the array)."""

    frames: Iterator[np.ndarray]
    n_frames: int
    fps: int
    audio: np.ndarray
    sample_rate: int
    words: list = field(default_factory=list)     # avatar.types.Word, seconds
    cues: list = field(default_factory=list)      # caption cues (avatar.types.Cue)

    @property
    def duration(self) -> float:
        return self.n_frames / self.fps


LOUDNESS = -16.0   # say's integrated loudness by default: a script's default `loudness:` (render's)
SAY_SIDE = 1920   # say's longest side when none is given and the photo is larger (a web-playable H.264 size)


def _resize(frames: Iterator[np.ndarray], longest: int | None) -> Iterator[np.ndarray]:
    import cv2

    for f in frames:
        h, w = f.shape[:2]
        if longest:
            s = longest / max(h, w)
            w, h = int(round(w * s)), int(round(h * s))
        w, h = w - w % 2, h - h % 2
        if (h, w) != f.shape[:2]:
            f = cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA if w < f.shape[1] else cv2.INTER_LINEAR)
        yield f


class Presenter:
    """A presenter that loads its face and voice once and says many things.

    Presenter(face="me.jpg", voice="joe", fps=25, size=None, crop=False, motion=None, ...)
      .say(text) -> Clip                     (or .say(audio="take.wav", transcript="..."))
      .say_to_file(text, "out.mp4") -> Result (+ out.srt, out.vtt)
    """

    def __init__(self, face: str | Path | None = None, *, voice: str | None = None, fps: int = 25,
                 size: int | None = None, crop: bool = False, still: bool = False, seed: int = 0,
                 expression_scale: float = 1.0, motion: str | None = None, renderer: str = "warp",
                 allow_cpu: bool = False, face_index: int = 0, lips_model: str | Path | None = None,
                 appearance: str | Path | None = None):
        from avatar.build.scene import identity_for
        from avatar.resources import default_photo

        from avatar.limits import IMAGE_SIDE

        if size is not None and size and size < 16:   # (0 or None: the photo's size, at most SAY_SIDE)
            raise AvatarError(f"{size} is too small", field="--size", hint="give the longest side in pixels, 16 or more")
        if size is not None and size > IMAGE_SIDE:
            raise AvatarError(f"{size} is too large", field="--size",
                              hint=f"at most {IMAGE_SIDE} (photos are read at up to {IMAGE_SIDE} px on their longest side)")
        if not 1 <= int(fps) <= 60:
            raise AvatarError(f"{fps} is out of range", field="--fps", hint="1..60")
        self.spec: AvatarSpec = _from_options(
            AvatarSpec, {"photo": Path(face) if face else default_photo(), "face_index": face_index, "still": still,
                         "seed": seed, "expression_scale": expression_scale, "lips_model": lips_model,
                         "appearance": appearance,
                         "renderer": {"name": renderer, "allow_cpu": allow_cpu},
                         **({"motion": motion} if motion else {})},
            {"motion": "--motion", "renderer.name": "--renderer", "face_index": "--face-index",
             "expression_scale": "--expression-scale"})
        self.fps, self.size, self.crop = int(fps), size, crop
        self.voice_spec = VoiceSpec(preset=voice) if voice else VoiceSpec()
        self.identity = identity_for(self.spec)
        self._fit_to_size()
        self._voice = None

    def _fit_to_size(self) -> None:
        """Without a size: the photo's (or its face crop's), at most SAY_SIDE. Where the photo is
        larger than the output, the presenter is scaled down first, so a 12 MP phone photo is not
        animated at full size to be shrunk frame by frame afterwards: the whole photo to the
        output's own size (its frames then need no resizing: the same clip as from the photo
        shrunk beforehand, in about half the time of rendering it at twice the size and shrinking
        each frame, bench/bench_photo_size.py), the face crop (--crop) to RENDER_MARGIN times it
        (the crop's box falls on no exact size, so its frames are shrunk from a margin)."""
        from avatar.build.scene import RENDER_MARGIN
        from avatar.face import scaled

        x0, _, x1, _ = self.identity.face_box
        side = (x1 - x0) if self.crop else max(self.identity.image.shape[:2])
        if not self.size and side > SAY_SIDE:
            self.size = SAY_SIDE
        s = (RENDER_MARGIN if self.crop else 1.0) * self.size / side if self.size else 1.0
        if s < 1:
            self.identity = scaled(self.identity, s)

    def _speech(self, text: str | None, audio: str | Path | None, transcript: str | None):
        from avatar.speech import load_voice

        if not text and audio is None:
            raise AvatarError("nothing to say: give TEXT or --audio FILE")
        if audio is not None:
            spec = VoiceSpec(engine="recorded", audio=Path(audio), transcript=transcript or text)
            return load_voice(spec).stream(text or "")   # a long recording stays in a temporary file
        if self._voice is None:
            self._voice = load_voice(self.voice_spec)
        return self._voice.synthesize(text)

    def say(self, text: str | None = None, *, audio: str | Path | None = None,
            transcript: str | None = None) -> Clip:
        """The clip in memory: frames (an iterator), audio, word times and caption cues."""
        from avatar.captions import build_cues
        from avatar.motion import make_motion
        from avatar.renderers import get_renderer
        from avatar.script.models import CaptionSpec

        speech = self._speech(text, audio, transcript)
        motion = make_motion(speech, self.fps, self.spec)
        frames = get_renderer(self.spec.renderer, self.spec.appearance).frames(self.identity, motion, crop=self.crop)
        shown = (text or transcript) or None
        cues = build_cues(speech.words, CaptionSpec(), text=shown) if speech.words else []
        return Clip(_resize(frames, self.size), len(motion), self.fps, speech.audio, speech.sample_rate,
                    list(speech.words), cues)

    def say_to_file(self, text: str | None, out: str | Path, *, audio: str | Path | None = None,
                    transcript: str | None = None, transparent: bool = False,
                    on_progress: ProgressCallback | None = None, loudness: float | None = LOUDNESS) -> Result:
        """Write the clip to OUT.mp4 (+ OUT.srt and OUT.vtt when it has words), as one set.

        transparent: the person cut out on a transparent background, OUT.webm or OUT.mov (avatar.video.alpha).
        loudness: the clip's integrated loudness in LUFS (true peak under -1 dBTP), as `render`
        makes a video's; None: the speech as it is."""
        from avatar.build.assemble import output_set
        from avatar.video import write_mp4
        from avatar.video.tags import metadata

        t0 = time.perf_counter()
        out = Path(out)
        _check_say_out(out, transparent)
        check_target(out)
        clip = self.say(text, audio=audio, transcript=transcript)
        write = write_mp4
        frames = clip.frames
        if transparent:
            from avatar.video.alpha import cut_out, write_alpha_video

            write, frames = write_alpha_video, cut_out(clip.frames)
        with output_set(out, clip.cues) as video:
            write(video, frames, fps=self.fps, audio=leveled(clip.audio, clip.sample_rate, loudness),
                  sample_rate=clip.sample_rate,
                  metadata=metadata(f"{out.stem} (AI-generated)"),
                  progress=lambda i: report(on_progress, "frames", i, clip.n_frames, "rendering"))
        return Result(out, clip.duration, clip.n_frames, time.perf_counter() - t0)


def leveled(audio, rate: int, target: float | None, true_peak: float = -1.0):
    """Speech audio as write_mp4 takes it ((n,) array, or a streamed RecordingAudio) at `target`
    LUFS with its true peak under `true_peak` dBTP (avatar.audio.loudness, as `render` levels a
    video's mix); target None: unchanged. A streamed recording stays streamed: it is metered in
    pieces and leveled as write_mp4 reads it."""
    from avatar.audio.loudness import normalize, plan

    if target is None:
        return audio
    if isinstance(audio, np.ndarray):
        a = np.asarray(audio, np.float32)
        out, _ = normalize(a[None] if a.ndim == 1 else a.T, rate, target, true_peak)
        return out[0] if a.ndim == 1 else out.T
    step = 10 * rate

    def blocks():
        for start in range(0, len(audio), step):
            yield audio.read(start, step)[None]
    p = plan(blocks, rate, target, true_peak)
    return audio if p is None else _Leveled(audio, p)


class _Leveled:
    """A streamed recording (len(), read(start, n)) read through a loudness Plan."""

    dtype, ndim = np.dtype(np.float32), 1

    def __init__(self, audio, plan):
        self.audio, self.plan = audio, plan

    def __len__(self) -> int:
        return len(self.audio)

    @property
    def shape(self) -> tuple[int]:
        return (len(self.audio),)

    def read(self, start: int, n: int) -> np.ndarray:
        return self.plan.apply(self.audio.read(start, n)[None], max(0, int(start)))[0]


def loudness_option(value: str | float | None, default: float | None) -> float | None:
    """--loudness: LUFS (validated like a script's `loudness:`), "off"/"none" for none, None for `default`."""
    if value is None:
        return default
    if str(value).strip().lower() in ("off", "none"):
        return None
    return _from_options(Presentation, {"loudness": value, "scenes": [{"narration": "x"}]},
                         {"loudness": "--loudness"}).loudness


def _check_say_out(out: Path, transparent: bool) -> None:
    if transparent:
        from avatar.video.alpha import check_alpha_path

        check_alpha_path(out)
    elif out.suffix.lower() != ".mp4":
        raise AvatarError(f"{out}: the output of say is an .mp4 file (e.g. -o hello.mp4; "
                          ".webm or .mov with --transparent)")


def say(text: str | None = None, *, face: str | Path | None = None, out: str | Path,
        audio: str | Path | None = None, transcript: str | None = None, voice: str | None = None,
        transparent: bool = False, on_progress: ProgressCallback | None = None,
        loudness: str | float | None = None, **presenter_options) -> Result:
    """One talking-head clip (the whole photo, or the face crop) from text or recorded audio.

    transparent: the person cut out, written as .webm (VP9 + alpha) or .mov (ProRes 4444).
    loudness: integrated LUFS of the clip (default -16, as render's), or "off" for the speech as it is.
    presenter_options: fps, size, crop, still, seed, expression_scale, motion, renderer,
    allow_cpu, face_index, lips_model, appearance (see Presenter)."""
    if not text and audio is None:
        raise AvatarError("nothing to say: give TEXT or --audio FILE")
    out = Path(out)
    _check_say_out(out, transparent)
    target = loudness_option(loudness, LOUDNESS)
    presenter = Presenter(face, voice=voice, **presenter_options)
    return presenter.say_to_file(text, out, audio=audio, transcript=transcript, transparent=transparent,
                                 on_progress=on_progress, loudness=target)


# --------------------------------------------------------------------------- render
def apply_options(deck: Presentation, *, face: str | Path | None = None, size: str | None = None,
                  fps: int | None = None, preview: bool = False, badge: bool = False,
                  loudness: str | float | None = None) -> Presentation:
    """Command-line overrides on top of a loaded presentation (loudness: LUFS, or "off")."""
    upd: dict = {}
    if loudness is not None:
        upd["loudness"] = loudness_option(loudness, None)
    if size or fps:   # validated like the script's own size: and fps:
        checked = _from_options(Presentation, {"size": size or deck.size, "fps": fps or deck.fps,
                                               "scenes": [{"narration": "x"}]}, {"size": "--size", "fps": "--fps"})
        upd.update(size=checked.size, fps=checked.fps)
    if badge:
        upd["badge"] = True
    if face is not None:
        face = Path(face)
        if not face.is_file():
            raise AvatarError(f"{face}: photo not found (--face)")
        photo = {"photo": face.resolve()}
        upd["avatar"] = deck.avatar.model_copy(update=photo)
        upd["scenes"] = [s.model_copy(update={"avatar": s.avatar.model_copy(update=photo)}) if s.avatar else s
                         for s in deck.scenes]
    deck = deck.model_copy(update=upd)
    if preview:
        w, h = deck.size
        s = min(1.0, 640 / max(w, h))
        deck = deck.model_copy(update={"size": (int(w * s) // 2 * 2, int(h * s) // 2 * 2), "fps": min(deck.fps, 15)})
    return deck


def plan(script: str | Path | Presentation, **options):
    """The scene plans of a script after `options` (face, size, fps, preview, badge): avatar.build.plan."""
    from avatar.build.plan import plan as _plan

    return _plan(apply_options(_script_or_text(script), **options))


def render(script: str | Path | Presentation, out: str | Path, *, face: str | Path | None = None,
           size: str | None = None, fps: int | None = None, preview: bool = False, jobs: int | None = None,
           badge: bool = False, cache: bool = True, cache_dir: str | Path | None = None,
           loudness: str | float | None = None, presenter_track: str | Path | None = None,
           on_progress: ProgressCallback | None = None) -> Result:
    """Render a presentation to OUT.mp4 (+ OUT.srt / OUT.vtt).

    jobs: scene processes (None: one per core, as memory allows); cache: reuse verified
    segments of unchanged scenes (cache_dir, else $AVATAR_CACHE, else the user cache folder);
    presenter_track: also write every scene's presenter, cut out, as one .webm/.mov alpha video."""
    from avatar.build.assemble import AudioAhead, assemble
    from avatar.build.cache import SceneCache, cache_root
    from avatar.build.run import run
    from avatar.video import probe

    t0 = time.perf_counter()
    out = Path(out)
    if out.suffix.lower() != ".mp4":
        raise AvatarError(f"{out}: the output of render is an .mp4 file (e.g. -o talk.mp4)")
    check_target(out)
    if presenter_track is not None:
        from avatar.video.alpha import check_alpha_path

        check_alpha_path(Path(presenter_track), "--presenter-track")
        check_target(Path(presenter_track))
    deck = apply_options(_script_or_text(script), face=face, size=size, fps=fps, preview=preview, badge=badge,
                         loudness=loudness)
    from avatar.build.plan import plan as _plan

    plans = _plan(deck)
    store = SceneCache(cache_root(cache_dir))
    from avatar.build.finish import finishing

    ahead = AudioAhead(plans, deck.fps, lambda infos: finishing(deck, infos, store.root)["mix"])
    infos, rendered = run(plans, store, jobs=jobs, use_cache=cache, on_progress=on_progress, audio=ahead)
    assemble([store.segment(p.key) for p in plans], infos, out, title=deck.title, captions=deck.captions,
             audio=ahead.result(), **finishing(deck, infos, store.root))
    if presenter_track is not None:
        from avatar.build.presenter_track import write_presenter_track

        write_presenter_track(plans, infos, presenter_track, on_progress=on_progress)
    info = probe(out)
    return Result(out, info["duration"], info.get("frames", 0), time.perf_counter() - t0,
                  scenes=len(plans), rendered=rendered)


# --------------------------------------------------------------------------- batch
def batch(template: str | Path, rows: str | Path, outdir: str | Path, *, name: str | None = None,
          executor: str = "local", jobs: int | None = None, ray_address: str | None = None, optional=(),
          check: bool = False, size: str | None = None, fps: int | None = None, preview: bool = False,
          badge: bool = False, loudness: str | float | None = None, cache: bool = True,
          cache_dir: str | Path | None = None, on_progress: ProgressCallback | None = None):
    """One video per row of ROWS (.csv/.tsv/.jsonl) from TEMPLATE (YAML with {{column}} placeholders).

    Returns an avatar.build.batch.BatchResult: its rows (row, status, output, seconds, error, as
    OUTDIR/report.csv), the scenes requested / distinct / cached / rendered. executor: "local"
    (process pool) or "ray"; check: validate and plan only. See avatar.build.batch.batch."""
    from avatar.build.batch import batch as _batch

    return _batch(template, rows, outdir, name=name, optional=optional, executor=executor, jobs=jobs,
                  ray_address=ray_address, check=check, cache=cache, cache_dir=cache_dir, on_progress=on_progress,
                  size=size, fps=fps, preview=preview, badge=badge, loudness=loudness)


__all__ = ["load", "render", "say", "speak", "plan", "batch", "list_voices", "Presenter", "Clip", "Result", "VoiceInfo",
           "apply_options"]
