"""Plans scenes, caches them, runs them (optionally in parallel) and joins the result.

    speech  = narrate_scene(deck, scene)              avatar.speech
    motion  = make_motion(speech, fps, avatar_spec)   avatar.motion
    face    = renderer.frames(identity, motion)       avatar.render
    frames  = SceneComposer(...).frames(face, ...)    avatar.compose
    segment = write_mp4(frames, speech.audio)         avatar.video

Each scene becomes its own MP4 segment in the cache, keyed by a hash of everything it
depends on; a rerun re-renders only scenes whose inputs changed, and the segments are
joined without re-encoding the video.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import nullcontext
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np

from avatar import __version__
from avatar.errors import AvatarError
from avatar.files import write_text
from avatar.script.models import AvatarSpec, Presentation, Scene, VoiceSpec
from avatar.motion import make_motion  # noqa: F401  (re-exported for the old import path)
from avatar.types import Motion, Speech

TOOL = f"avatar-presenter {__version__}"


def metadata(title: str) -> dict[str, str]:
    """Container tags that say, in every output, that the video is AI-generated."""
    note = (f"AI-generated video made with {TOOL}. The presenter is synthetic: "
            "a face animated from one photo, with a synthetic (or recorded) voice.")
    return {"title": title, "comment": note, "description": note, "artist": f"{TOOL} (synthetic presenter)",
            "encoder": TOOL}


# --------------------------------------------------------------------------- helpers
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
            pauses += sc.duration or 2.0
    speed = deck.voice.speed or 1.0
    return {"scenes": len(deck.scenes), "slides": sum(s.slide is not None for s in deck.scenes),
            "words": words, "duration": words / (2.6 * speed) + pauses}


def _progress(console):
    if console is None:
        return nullcontext(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=console, transient=False)


def _file_hash(path: Path | None) -> str:
    if path is None:
        return "default"
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=1)
def code_version() -> str:
    """Hash of the package's code and shipped data: a change to any stage invalidates cached scenes."""
    root = Path(__file__).parent
    h = hashlib.sha256(__version__.encode())
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix in {".py", ".safetensors", ".json", ".yaml"}:
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def photo_path(spec: AvatarSpec) -> Path:
    from avatar.resources import default_photo

    return Path(spec.photo) if spec.photo else default_photo()


def _identity(spec: AvatarSpec):
    """The presenter of a scene (None when its layout shows no presenter)."""
    from avatar.face import load_identity

    if spec.layout == "none":
        return None
    return load_identity(photo_path(spec), face_index=spec.face_index, detector=spec.detector)


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


# --------------------------------------------------------------------------- speak
def _script_or_text(script: str | Path | Presentation) -> Presentation:
    from avatar.script import from_text, load

    if isinstance(script, Presentation):
        return script
    p = Path(str(script))
    if p.suffix.lower() in {".yaml", ".yml", ".md", ".markdown", ".txt"} or p.exists():
        return load(p)
    return from_text(str(script))


def _with_voice(deck: Presentation, voice: str | None) -> Presentation:
    if not voice:
        return deck
    spec = VoiceSpec(preset=voice)
    return deck.model_copy(update={"voice": spec, "scenes": [s.model_copy(update={"voice": None}) for s in deck.scenes]})


def speak(script: str | Path | Presentation, out: Path, *, voice: str | None = None, console=None) -> Speech:
    """Narrate a script to OUT.wav + OUT.srt + OUT.vtt + OUT.timings.json."""
    from avatar.speech.narrate import speak_to_files

    deck = _with_voice(_script_or_text(script), voice)
    out = Path(out)
    if out.suffix.lower() != ".wav":
        raise AvatarError(f"{out}: the output of speak is a .wav file (e.g. -o narration.wav)")
    with _progress(console if len(deck.scenes) > 1 else None) as prog:
        task = prog.add_task("narrating", total=len(deck.scenes)) if prog else None
        cb = (lambda i, n: prog.update(task, completed=i)) if prog else None
        return speak_to_files(deck, out, progress=cb)


# --------------------------------------------------------------------------- say
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


def say(text: str | None, *, face: Path | None, out: Path, audio: Path | None = None,
        transcript: str | None = None, voice: str | None = None, fps: int = 25, size: int | None = None,
        crop: bool = False, still: bool = False, seed: int = 0, expression_scale: float = 1.0,
        motion: str | None = None, renderer: str = "warp", allow_cpu: bool = False, face_index: int = 0,
        console=None) -> Result:
    """One talking-head clip (the whole photo, or the face crop) from text or recorded audio."""
    from avatar.captions import build_cues, write_srt, write_vtt
    from avatar.render import get_renderer
    from avatar.script.models import CaptionSpec
    from avatar.speech import load_voice
    from avatar.video import write_mp4

    if not text and audio is None:
        raise AvatarError("nothing to say: give TEXT or --audio FILE")
    t0 = time.perf_counter()
    out = Path(out)
    if out.suffix.lower() != ".mp4":
        raise AvatarError(f"{out}: the output of say is an .mp4 file (e.g. -o hello.mp4)")
    if size and size < 16:   # (0 or None: the photo's size)
        raise AvatarError(f"{size} is too small", field="--size", hint="give the longest side in pixels, 16 or more")
    spec = _from_options(AvatarSpec, {"photo": face, "face_index": face_index, "still": still, "seed": seed,
                                      "expression_scale": expression_scale,
                                      "renderer": {"name": renderer, "allow_cpu": allow_cpu},
                                      **({"motion": motion} if motion else {})},
                         {"motion": "--motion", "renderer.name": "--renderer", "face_index": "--face-index",
                          "expression_scale": "--expression-scale"})
    identity = _identity(spec)
    if audio is not None:
        vspec = VoiceSpec(engine="recorded", audio=Path(audio), transcript=transcript or text)
    else:
        vspec = VoiceSpec(preset=voice) if voice else VoiceSpec()
    speech = load_voice(vspec).synthesize(text or "")
    mo = make_motion(speech, fps, spec)
    frames = get_renderer(spec.renderer).frames(identity, mo, crop=crop)
    frames = _resize(frames, size)
    cues = build_cues(speech.words, CaptionSpec(), text=(text or transcript) or None) if speech.words else []
    with _progress(console) as prog:
        task = prog.add_task("rendering", total=len(mo)) if prog else None
        cb = (lambda i: prog.update(task, completed=i)) if prog else None
        write_mp4(out, frames, fps=fps, audio=speech.audio, sample_rate=speech.sample_rate,
                  metadata=metadata(f"{out.stem} (AI-generated)"), progress=cb)
    if cues:
        write_srt(out.with_suffix(".srt"), cues)
        write_vtt(out.with_suffix(".vtt"), cues)
    return Result(out, len(mo) / fps, len(mo), time.perf_counter() - t0)


# --------------------------------------------------------------------------- render
def _cache_root(cache_dir: Path | None) -> Path:
    from avatar.build.cache import cache_root

    return cache_root(cache_dir)


def apply_options(deck: Presentation, *, face: Path | None = None, size: str | None = None,
                  fps: int | None = None, preview: bool = False, badge: bool = False) -> Presentation:
    """Command-line overrides on top of a loaded presentation."""
    upd: dict = {}
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


def preflight(deck: Presentation) -> None:
    """Check what only the render stages can check (theme fonts, PDF pages, photos) before any
    scene is rendered, so a mistake in scene 9 does not cost eight scenes of rendering."""
    from avatar.compose import load_theme
    from avatar.compose.images import render_pdf_page

    where = f"{deck.source}: " if deck.source else ""
    try:
        load_theme(deck.theme, deck.source.parent if deck.source else None)
    except AvatarError as e:
        raise AvatarError(f"{where}{e}") from None
    for i, sc in enumerate(deck.scenes):
        if sc.slide is not None and sc.slide.pdf is not None:
            try:
                render_pdf_page(Path(sc.slide.pdf), sc.slide.page or 1, (8, 8))
            except AvatarError as e:
                raise AvatarError(f"{where}scenes[{i}].slide: {e}") from None
        av = deck.avatar_for(sc)
        photo = photo_path(av)
        if av.layout != "none" and not photo.is_file():
            raise AvatarError(f"{where}scenes[{i}].avatar.photo: photo not found: {photo}")


@dataclass
class SceneJob:
    deck: dict            # Presentation.model_dump(mode="json")
    source: Optional[str]
    index: int
    key: str
    segment: str          # where the finished segment goes (cache)


def scene_key(deck: Presentation, index: int) -> str:
    """Hash of everything a scene's segment depends on."""
    scene = deck.scenes[index]
    av = deck.avatar_for(scene)
    parts = {
        "scene": scene.model_dump(mode="json"),
        "prev_slide": deck.scenes[index - 1].slide.model_dump(mode="json") if index and deck.scenes[index - 1].slide else None,
        "first": index == 0,
        "voice": deck.voice_for(scene).model_dump(mode="json"),
        "avatar": av.model_dump(mode="json"),
        "photo": _file_hash(photo_path(av)),
        "theme": deck.theme.model_dump(mode="json"),
        "captions": deck.captions.model_dump(mode="json"),
        "video": [deck.size, deck.fps, deck.transition, deck.transition_duration, deck.badge],
        "code": code_version(),
    }
    for f in ("image", "pdf"):
        p = getattr(scene.slide, f, None)
        if p:
            parts[f] = _file_hash(Path(p))
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _load_job_deck(job: SceneJob) -> Presentation:
    deck = Presentation.model_validate(job.deck)
    if job.source:
        deck = deck.model_copy(update={"source": Path(job.source)})
    return deck


def render_scene(job: SceneJob, progress: Callable[[int], None] | None = None) -> dict:
    """Render one scene to its cached segment (atomic). Returns its timing figures."""
    try:
        return _render_scene(job, progress)
    except AvatarError as e:
        raise AvatarError(f"scene {job.index + 1}: {e}") from None


def _render_scene(job: SceneJob, progress: Callable[[int], None] | None) -> dict:
    from avatar.captions import build_cues
    from avatar.compose import SceneComposer, crossfade
    from avatar.render import get_renderer
    from avatar.speech.markup import plain_text
    from avatar.speech.narrate import narrate_scene
    from avatar.video import write_mp4

    deck = _load_job_deck(job)
    scene = deck.scenes[job.index]
    av = deck.avatar_for(scene)
    speech = narrate_scene(deck, scene)
    fps = deck.fps
    n = Motion.frame_count(speech.duration, fps)
    text = plain_text(scene.narration)
    cues = build_cues(speech.words, deck.captions, text=text) if deck.captions.enabled else []
    identity = _identity(av)
    composer = SceneComposer(deck, scene, identity, name=f"scene {job.index + 1}")
    crop = composer.layout.mode == "pip"   # pip shows the face crop; side/full show the whole photo
    face_frames = None
    if composer.needs_face:
        motion = make_motion(speech, fps, av, n)
        face_frames = get_renderer(av.renderer).frames(identity, motion, crop=crop)
    frames = composer.frames(face_frames, speech, cues if deck.captions.burn else [], n, face_is_crop=crop)
    keyframes: tuple[int, ...] = ()
    if job.index > 0 and deck.transition_for(scene) == "crossfade" and deck.transition_duration > 0:
        last = _last_frame(deck, deck.scenes[job.index - 1], job.index - 1)
        fade = int(round(deck.transition_duration * fps))
        frames = crossfade(last, frames, fade)
        keyframes = (fade,)   # a clean picture once the fade is over
    seg = Path(job.segment)
    write_mp4(seg, frames, fps=fps, audio=speech.audio, sample_rate=speech.sample_rate,
              metadata=metadata(deck.title), progress=progress, keyframes=keyframes)
    info = {"index": job.index, "duration": n / fps, "frames": n, "sample_rate": speech.sample_rate, "text": text,
            "words": [[w.text, w.start, w.end] for w in speech.words]}
    write_text(_sidecar(seg), json.dumps(info))
    return info


def _last_frame(deck: Presentation, scene: Scene, index: int) -> np.ndarray:
    """The previous scene's closing picture (all bullets shown, presenter at rest), to crossfade from.

    Computed from the previous scene's inputs alone, so scenes stay independent units."""
    from avatar.compose import SceneComposer

    composer = SceneComposer(deck, scene, _identity(deck.avatar_for(scene)), name=f"scene {index + 1}")
    bullets = len(scene.slide.reveal_items) if scene.slide else 0
    shown = Speech(np.zeros(0, np.float32), 16000, markers=[("next", 0.0)] * bullets)
    return next(iter(composer.frames(None, shown, (), 1, face_is_crop=composer.layout.mode == "pip")))


def _sidecar(segment: Path) -> Path:
    """Scene facts stored beside its segment, so a cached scene still gives captions and timing."""
    return segment.with_suffix(".json")


def _scene_cues(segment: Path, offset: float, spec) -> tuple[list, float]:
    """The scene's caption cues (the same ones burned into it), shifted to the video's timeline."""
    from dataclasses import replace

    from avatar.captions import build_cues
    from avatar.types import Word

    info = json.loads(_sidecar(segment).read_text())
    words = [Word(t, s, e) for t, s, e in info["words"]]
    cues = build_cues(words, spec, text=info.get("text")) if words else []
    return [replace(c, start=c.start + offset, end=c.end + offset,
                    words=tuple(replace(w, start=w.start + offset, end=w.end + offset) for w in c.words))
            for c in cues], info["duration"]


def render(script: str | Path | Presentation, out: Path, *, face: Path | None = None, size: str | None = None,
           fps: int | None = None, preview: bool = False, jobs: int = 1, badge: bool = False, cache: bool = True,
           cache_dir: Path | None = None, console=None) -> Result:
    """Render a presentation to OUT.mp4 (+ OUT.srt / OUT.vtt)."""
    from avatar.captions import write_srt, write_vtt
    from avatar.video import concat_mp4, probe

    t0 = time.perf_counter()
    out = Path(out)
    if out.suffix.lower() != ".mp4":
        raise AvatarError(f"{out}: the output of render is an .mp4 file (e.g. -o talk.mp4)")
    if not out.parent.exists():
        raise AvatarError(f"{out}: folder {out.parent} does not exist")
    deck = _script_or_text(script)
    deck = apply_options(deck, face=face, size=size, fps=fps, preview=preview, badge=badge)
    preflight(deck)
    seg_dir = _cache_root(cache_dir) / "scenes"
    seg_dir.mkdir(parents=True, exist_ok=True)
    dump = deck.model_dump(mode="json")
    src = str(deck.source) if deck.source else None
    all_jobs = []
    for i in range(len(deck.scenes)):
        key = scene_key(deck, i)
        all_jobs.append(SceneJob(dump, src, i, key, str(seg_dir / f"{key}.mp4")))
    todo = [j for j in all_jobs if not (cache and Path(j.segment).exists() and _sidecar(Path(j.segment)).exists())]

    with _progress(console) as prog:
        overall = prog.add_task(f"scenes ({len(all_jobs) - len(todo)} cached)", total=len(all_jobs),
                                completed=len(all_jobs) - len(todo)) if prog else None
        if jobs > 1 and len(todo) > 1:
            with ProcessPoolExecutor(max_workers=min(jobs, len(todo))) as ex:
                futs = [ex.submit(render_scene, j) for j in todo]
                for f in as_completed(futs):
                    f.result()
                    if prog:
                        prog.advance(overall)
        else:
            for j in todo:
                task = prog.add_task(f"  scene {j.index + 1}", total=None) if prog else None
                cb = (lambda k, t=task: prog.update(t, completed=k)) if prog else None
                render_scene(j, progress=cb)
                if prog:
                    prog.update(task, total=prog.tasks[task].completed or 1, completed=prog.tasks[task].completed or 1)
                    prog.advance(overall)

    segments = [Path(j.segment) for j in all_jobs]
    concat_mp4(segments, out, metadata=metadata(deck.title))
    if deck.captions.enabled and deck.captions.files:
        # caption files for the whole video: each scene's cues on the joined timeline
        cues, offset = [], 0.0
        for seg in segments:
            scene_cues, duration = _scene_cues(seg, offset, deck.captions)
            cues += scene_cues
            offset += duration
        if cues:
            write_srt(out.with_suffix(".srt"), cues)
            write_vtt(out.with_suffix(".vtt"), cues)
    info = probe(out)
    return Result(out, info["duration"], info.get("frames", 0), time.perf_counter() - t0,
                  scenes=len(all_jobs), rendered=len(todo))
