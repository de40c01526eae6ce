"""Plan: a presentation -> one frozen, serialisable ScenePlan per scene.

Planning resolves everything a scene's segment depends on, once, before anything renders:
the presentation settings that apply to the scene, its voice with the preset and lexicon
applied, its presenter, the loaded theme, the slide, the previous scene's closing-frame
inputs (for a crossfade), and the content digest of every input file. The cache key is
the hash of the plan and of nothing else, so an edited file can never be served stale,
and a file whose content did not change (only its mtime) re-renders nothing.

Planning is also the preflight: a missing font, PDF page or photo fails here, before
scene 1 renders, with a one-line error naming the scene.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from avatar import __version__
from avatar.errors import AvatarError
from avatar.script.models import VOICE_PATH_FIELDS, AvatarSpec, Presentation, Scene

PLAN_VERSION = 1
# presentation fields that only assembly uses (avatar.build.finish): left out of scene plans
FINISH_DEFAULTS = {f: Presentation.model_fields[f].default for f in ("music", "loudness", "true_peak", "chapters")}
# package folders whose content reaches a plan through resolved values and digests, not code_version()
_RESOURCE_DIRS = {"voices", "templates", "assets"}


@dataclass(frozen=True)
class ScenePlan:
    """Everything one scene's segment is made from. JSON in, JSON out; executing it is pure."""

    index: int                  # position in its presentation (messages only; not in the key)
    deck: dict                  # a one-scene Presentation (JSON): the settings that apply, the voice
                                # resolved (preset + lexicon), the presenter, every path absolute
    theme: dict                 # the loaded theme (avatar.compose.theme.Theme fields, JSON)
    previous: dict | None       # crossfade: the previous scene's closing-frame inputs {"deck", "theme"}
    inputs: dict                # every input file (absolute path) -> sha256 of its content
    code: str                   # code_version(): the code and shipped models that execute it
    source: str | None = None   # the script it came from (messages only; not in the key)

    def keyed(self) -> dict:
        return {"version": PLAN_VERSION, "deck": self.deck, "theme": self.theme, "previous": self.previous,
                "inputs": self.inputs, "code": self.code}

    @property
    def key(self) -> str:
        """The cache key: the hash of the plan (index and source excluded)."""
        text = json.dumps(self.keyed(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ScenePlan":
        return cls(**json.loads(text))

    @property
    def name(self) -> str:
        return f"scene {self.index + 1}"

    def presentation(self) -> Presentation:
        return Presentation.model_validate(self.deck)

    def scene(self) -> Scene:
        return self.presentation().scenes[0]


# --------------------------------------------------------------------------- digests
def file_digest(path: str | Path) -> str:
    """sha256 of a file's content."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class _Digests:
    """Content digests of the files one planning pass reads (each file hashed once)."""

    def __init__(self):
        self.seen: dict[str, str] = {}

    def add(self, out: dict, path: str | Path | None, what: str) -> None:
        if path is None:
            return
        p = Path(path).resolve()
        key = str(p)
        if key not in self.seen:
            try:
                self.seen[key] = file_digest(p)
            except OSError as e:
                raise AvatarError(f"cannot read {what}: {e.strerror or e}", path=p) from None
        out[key] = self.seen[key]


@lru_cache(maxsize=1)
def code_version() -> str:
    """Hash of the package's code and shipped models: a change to any stage invalidates cached scenes."""
    from importlib.resources import files

    root = Path(str(files("avatar")))
    h = hashlib.sha256(__version__.encode())
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if rel.parts[0] in _RESOURCE_DIRS or "__pycache__" in rel.parts or not p.is_file() or p.suffix == ".pyc":
            continue
        h.update(str(rel).encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- planning
def _absolute(p: Path | str | None, base: Path) -> Path | None:
    if p is None:
        return None
    p = Path(p).expanduser()
    return (p if p.is_absolute() else base / p).resolve()


def _voice(deck: Presentation, scene: Scene, base: Path, inputs: dict, digests: _Digests):
    from avatar.speech.presets import resolve

    voice = resolve(deck.voice_for(scene), base)
    voice = voice.model_copy(update={f: _absolute(getattr(voice, f), base) for f in VOICE_PATH_FIELDS})
    if voice.engine == "piper":
        if voice.model is None:
            from avatar.speech.piper_voice import bundled_model

            for p in bundled_model():
                digests.add(inputs, p, "the bundled Piper voice")
        else:
            digests.add(inputs, voice.model, "voice.model")
            json_config = Path(f"{voice.model}.json")
            if json_config.is_file():
                digests.add(inputs, json_config, "voice.model config")
    for f in ("audio", "model_path", "config_path", "speaker_wav"):
        digests.add(inputs, getattr(voice, f), f"voice.{f}")
    return voice


def _presenter(deck: Presentation, scene: Scene, base: Path, inputs: dict, digests: _Digests) -> AvatarSpec:
    from avatar.resources import default_photo

    av = deck.avatar_for(scene)
    photo = _absolute(av.photo, base) if av.photo else default_photo()
    av = av.model_copy(update={"photo": photo, "lips_model": _absolute(av.lips_model, base),
                               "appearance": _absolute(av.appearance, base)})
    if av.layout == "none":
        return av
    if not isinstance(av.background, str):
        av = av.model_copy(update={"background": _backdrop(av.background, base, inputs, digests)})
    if not photo.is_file():
        raise AvatarError(f"photo not found: {photo}", field="avatar.photo",
                          hint="check the path, or use --face PHOTO")
    digests.add(inputs, photo, "avatar.photo")
    digests.add(inputs, av.appearance, "avatar.appearance")
    if av.motion != "phonemes" and av.lips_model is not None:
        from avatar.motion.audio_model import config_path

        for p in (av.lips_model, config_path(av.lips_model)):
            if not p.is_file():
                raise AvatarError(f"lip-sync model not found: {p}", field="avatar.lips_model")
            digests.add(inputs, p, "avatar.lips_model")
    return av


def _backdrop(backdrop, base: Path, inputs: dict, digests: _Digests):
    """avatar.background {image:} / {color:}: the image absolute and digested; both checked by drawing them."""
    from avatar.compose.theme import render_background

    backdrop = backdrop.model_copy(update={"image": _absolute(backdrop.image, base)})
    if backdrop.image is not None and not backdrop.image.is_file():
        raise AvatarError(f"image not found: {backdrop.image}", field="avatar.background.image",
                          hint="paths are relative to the script's folder")
    digests.add(inputs, backdrop.image, "avatar.background.image")
    try:
        render_background(backdrop.color or "#000000", (8, 8), backdrop.image)
    except (AvatarError, ValueError, OSError) as e:
        raise AvatarError(str(e), field="avatar.background") from None
    return backdrop


def _theme(deck: Presentation, base: Path, inputs: dict, digests: _Digests) -> dict:
    from avatar.compose import load_theme

    theme = load_theme(deck.theme, base)
    paths = {f.name: _absolute(getattr(theme, f.name), base) for f in dataclasses.fields(theme)
             if isinstance(getattr(theme, f.name), Path)}
    theme = dataclasses.replace(theme, **paths)
    for name, p in paths.items():
        digests.add(inputs, p, f"theme.{name}" if name != "path" else "the theme file")
    return theme_to_json(theme)


def theme_to_json(theme) -> dict:
    return {k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v)
            for k, v in dataclasses.asdict(theme).items()}


def theme_from_json(data: dict):
    from avatar.compose.theme import Theme

    kinds = {f.name: f.type for f in dataclasses.fields(Theme)}
    out = {}
    for k, v in data.items():
        t = str(kinds[k])
        out[k] = (Path(v) if v is not None and "Path" in t else tuple(v) if isinstance(v, list) else v)
    return Theme(**out)


def _slide(scene: Scene, base: Path, inputs: dict, digests: _Digests) -> Scene:
    if scene.slide is None:
        return scene
    upd = {f: _absolute(getattr(scene.slide, f), base) for f in ("image", "pdf", "video")}
    slide = scene.slide.model_copy(update=upd)
    digests.add(inputs, slide.image, "slide.image")
    if slide.video is not None:
        from avatar.compose.video_slide import clip_info, clip_span

        clip_span(slide, clip_info(slide.video))   # readable, and start/end inside the clip
        digests.add(inputs, slide.video, "slide.video")
    if slide.pdf is not None:
        from avatar.compose.images import render_pdf_page

        digests.add(inputs, slide.pdf, "slide.pdf")
        try:
            render_pdf_page(slide.pdf, slide.page or 1, (8, 8))   # the page exists and renders
        except AvatarError as e:
            raise AvatarError(str(e), field="slide") from None
    return scene.model_copy(update={"slide": slide})


def _look(deck: Presentation, scene: Scene, base: Path, theme: dict, digests: _Digests) -> tuple[dict, dict]:
    """(the one-scene presentation as JSON, its input digests)."""
    inputs: dict = {}
    voice = _voice(deck, scene, base, inputs, digests)
    av = _presenter(deck, scene, base, inputs, digests)
    scene = _slide(scene, base, inputs, digests)
    one = deck.model_copy(update={
        "title": "",   # the title only tags the joined video; scenes shared by many videos stay shared
        "voice": voice, "avatar": av, "transition": deck.transition_for(scene),
        "scenes": [scene.model_copy(update={"voice": None, "avatar": None, "transition": None, "music": None})],
        "source": None, **FINISH_DEFAULTS})   # music, loudness, chapters: made at assembly, not in the key
    return one.model_dump(mode="json"), inputs


def plan(deck: Presentation, digests: _Digests | None = None) -> list[ScenePlan]:
    """One ScenePlan per scene of `deck` (the render preflight: raises AvatarError naming the scene).

    digests: share one between the decks of a batch so each input file is hashed once."""
    from avatar.speech.narrate import base_dir_of

    base = base_dir_of(deck) or Path.cwd()
    where = f"{deck.source}: " if deck.source else ""
    digests = digests or _Digests()
    theme_inputs: dict = {}
    try:
        theme = _theme(deck, base, theme_inputs, digests)
    except AvatarError as e:
        raise AvatarError(f"{where}{e}") from None
    try:
        from avatar.build.finish import check_music

        check_music(deck)
    except AvatarError as e:
        raise AvatarError(f"{where}{e}") from None
    code = code_version()
    fade = deck.transition_duration > 0
    plans: list[ScenePlan] = []
    prev: tuple[dict, dict] | None = None
    for i, scene in enumerate(deck.scenes):
        try:
            look, inputs = _look(deck, scene, base, theme, digests)
        except AvatarError as e:   # "scenes[2].slide: ...", "scenes[0].voice.preset: ..."
            sep = "." if str(e).startswith(("voice", "avatar", "slide")) else ": "
            raise AvatarError(f"{where}scenes[{i}]{sep}{e}") from None
        inputs.update(theme_inputs)
        previous, used = None, dict(inputs)
        # no crossfade out of a clip: the closing frame is rebuilt without the narration, so not its last picture
        after_clip = i > 0 and deck.scenes[i - 1].slide is not None and deck.scenes[i - 1].slide.layout == "video"
        if prev is not None and fade and deck.transition_for(scene) == "crossfade" and not after_clip:
            previous = {"deck": prev[0], "theme": theme}
            used.update(prev[1])
        plans.append(ScenePlan(i, look, theme, previous, dict(sorted(used.items())), code,
                               str(deck.source) if deck.source else None))
        prev = (look, inputs)
    _warn_undrawable(deck, theme, where)
    _warn_unspoken(deck, where)
    return plans


def _warn_unspoken(deck: Presentation, where: str) -> None:
    """A warning when no scene has any narration: a Markdown or PowerPoint deck without speaker
    notes renders its slides silently, which is seldom what was meant. A deck that asks for its
    silence (a pause, a scene's own duration, a video slide, a recording) gets none."""
    import warnings

    for scene in deck.scenes:
        video = scene.slide is not None and scene.slide.layout == "video"
        if (scene.narration or "").strip() or scene.duration is not None or video or deck.voice_for(scene).audio:
            return
    warnings.warn(f"{where}no scene has narration, so the presenter never speaks: give the scenes a narration "
                  "(a Markdown deck: speaker notes in <!-- ... --> or a Note: block; PowerPoint: the slides' "
                  "notes)", stacklevel=3)


def _warn_undrawable(deck: Presentation, theme: dict, where: str) -> None:
    """A warning per scene whose slide or burned captions hold characters that the theme's font for
    them cannot draw (they would show as empty boxes), naming them and the theme key to change."""
    import warnings

    from avatar.compose.theme import font_having, undrawable
    from avatar.speech.markup import plain_text

    for i, scene in enumerate(deck.scenes):
        texts: dict[str, list[str]] = {"font_bold": [], "font": [], "font_mono": []}
        slide = scene.slide
        if slide is not None:
            texts["font_bold"] += [slide.title or "", slide.author or ""]
            texts["font"] += [slide.subtitle or "", slide.text or "", slide.quote or "", *slide.bullets,
                              *slide.left, *slide.right]
            texts["font_mono"].append(slide.code or "")
        if deck.captions.enabled and deck.captions.burn:
            texts["font_bold"].append(plain_text(scene.narration))   # the captions' font
        for key, parts in texts.items():
            bad = undrawable(theme[key], "\n".join(parts))
            if bad:
                shown = " ".join(bad[:8]) + (" ..." if len(bad) > 8 else "")
                other = font_having(bad, {"font_bold": "bold", "font_mono": "mono"}.get(key, "regular"))
                has = ""
                if other:
                    has = f", e.g. {other[0]} (installed here{f', all but {len(other[1])}' if other[1] else ''})"
                warnings.warn(f"{where}scenes[{i}]: {len(bad)} character(s) the font {Path(theme[key]).name} has no "
                              f"glyph for ({shown}) would show as empty boxes; set theme.{key} to a font that has "
                              f"them{has}; the .srt/.vtt captions keep them", stacklevel=3)

