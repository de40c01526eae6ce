"""Shared by the loaders: raw data + source locations -> a validated Presentation.

Each loader turns its input into plain Python data (dicts, lists, scalars) and a
``Locs`` map from data paths such as ``("scenes", 2, "slide", "layout")`` to the
``(file, line)`` that wrote them. Everything after that is common: shorthands,
relative paths, ``extends`` merging, scene overrides, pydantic validation, markup
and file checks, and errors that name file:line: field.
"""
from __future__ import annotations

import difflib
import re
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from avatar.errors import AvatarError
from avatar.script.models import VOICE_PATH_FIELDS, AvatarSpec, Presentation, Scene, Slide
from avatar.speech import markup

DataPath = tuple[Union[str, int], ...]
Loc = tuple[str, int]                 # (file shown in messages, 1-based line)
Locs = dict[DataPath, Loc]

AVATAR_LAYOUTS = get_args(AvatarSpec.model_fields["layout"].annotation)
SLIDE_LAYOUTS = get_args(Slide.model_fields["layout"].annotation)

# Fields holding file paths: resolved against the folder of the file that wrote them.
_PATH_FIELDS = {
    "avatar": ("photo", "lips_model", "appearance"),
    "voice": VOICE_PATH_FIELDS,
    "theme": ("background_image", "logo"),
    "slide": ("image", "pdf", "video"),
    "music": ("file",),
}
# Fields that are a name or a path (a path when it looks like one).
_MAYBE_PATH_FIELDS = {"voice": ("preset",), "theme": ("name", "font", "font_bold", "font_mono")}
_PATHLIKE_SUFFIXES = {".yaml", ".yml", ".ttf", ".otf", ".ttc", ".woff", ".woff2"}


# ----------------------------------------------------------------------------- small helpers
def field_name(path: DataPath) -> str:
    """("scenes", 2, "slide", "layout") -> "scenes[2].slide.layout"."""
    out = ""
    for el in path:
        out += f"[{el}]" if isinstance(el, int) else (f".{el}" if out else str(el))
    return out


def where(locs: Locs, path: DataPath, default: Loc) -> Loc:
    """The location of the longest prefix of `path` that has one."""
    for n in range(len(path), -1, -1):
        if path[:n] in locs:
            return locs[path[:n]]
    return default


def fail(message: str, locs: Locs, path: DataPath, default: Loc, hint: str | None = None) -> AvatarError:
    file, line = where(locs, path, default)
    return AvatarError(message, path=file, line=line, field=field_name(path) or None, hint=hint)


def did_you_mean(word: str, options) -> str | None:
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def file_title(path: Path) -> str:
    """The default title of a script: its file name ("my_talk-v2.md" -> "my talk v2")."""
    return path.stem.replace("_", " ").replace("-", " ")


def read_text(path: Path) -> str:
    """The script's text, or an AvatarError saying why it can't be read (or is too large)."""
    from avatar.limits import MAX_SCRIPT_BYTES

    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SCRIPT_BYTES + 1)
        if len(data) > MAX_SCRIPT_BYTES:
            raise AvatarError(f"the script is larger than {MAX_SCRIPT_BYTES // 2 ** 20} MB", path=path,
                              hint="split it into several scripts")
        return data.decode("utf-8-sig")
    except FileNotFoundError:
        raise AvatarError("script file not found", path=path, hint="check the path") from None
    except IsADirectoryError:
        raise AvatarError("is a folder, not a script file", path=path) from None
    except UnicodeDecodeError as e:
        raise AvatarError(f"not UTF-8 text ({e.reason} at byte {e.start})", path=path,
                          hint="save the script as UTF-8") from None
    except OSError as e:
        raise AvatarError(f"cannot read the script: {e.strerror or e}", path=path) from None


# ----------------------------------------------------------------------------- merging
def deep_merge(base: Any, over: Any) -> Any:
    """Maps merge key by key (recursively); anything else in `over` replaces `base`."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = deep_merge(base[k], v) if k in base else v
        return out
    return over


def merge_locs(base: Locs, over: Locs, over_data: Any) -> Locs:
    """Locations after deep_merge(base, over): `over` wins; base entries below a replaced value go."""
    replaced: list[DataPath] = []

    def collect(d: Any, p: DataPath) -> None:
        if isinstance(d, dict):
            for k, v in d.items():
                collect(v, p + (k,))
        else:
            replaced.append(p)

    collect(over_data, ())
    out = {p: l for p, l in base.items()
           if not any(len(p) > len(r) and p[:len(r)] == r for r in replaced)}
    out.update(over)
    return out


# ----------------------------------------------------------------------------- per-file normalisation
def normalize(data: dict, locs: Locs, base_dir: Path, default: Loc) -> None:
    """Shorthands and relative paths of ONE file's data, before merging with other files."""
    for key in ("theme", "voice", "avatar", "captions"):
        if key in data and data[key] is None:                   # `voice:` with everything commented out
            del data[key]
    for key, field in (("theme", "name"), ("voice", "preset")):
        if isinstance(data.get(key), str):                      # theme: dark  -> theme: {name: dark}
            data[key] = {field: data[key]}
            locs[(key, field)] = where(locs, (key,), default)
    _resolve_section_paths(data, base_dir)
    scenes = data.get("scenes")
    if isinstance(scenes, list):
        for i, scene in enumerate(scenes):
            if isinstance(scene, dict):
                if isinstance(scene.get("voice"), str):
                    scene["voice"] = {"preset": scene["voice"]}
                    locs[("scenes", i, "voice", "preset")] = where(locs, ("scenes", i, "voice"), default)
                _layout_shorthand(scene, ("scenes", i), locs, default)
                _resolve_section_paths(scene, base_dir)


def _layout_shorthand(scene: dict, at: DataPath, locs: Locs, default: Loc) -> None:
    """Scene `layout:` is where the presenter sits (pip/side/full/none) or, for a slide layout
    name (bullets, quote, ...), the slide's layout: the two sets of names do not overlap."""
    if "layout" not in scene:
        return
    value = scene.pop("layout")
    loc = where(locs, at + ("layout",), default)
    if value in AVATAR_LAYOUTS:
        target, section = ("avatar", "layout"), "avatar"
    elif value in SLIDE_LAYOUTS:
        target, section = ("slide", "layout"), "slide"
    else:
        raise fail(f"unknown value {value!r}", locs, at + ("layout",), default,
                   hint=did_you_mean(value, AVATAR_LAYOUTS + SLIDE_LAYOUTS)
                   or f"presenter: {', '.join(AVATAR_LAYOUTS)}; slide: {', '.join(SLIDE_LAYOUTS)}")
    sub = scene.get(section)
    if sub is None:
        sub = scene[section] = {}
        locs.setdefault(at + (section,), loc)
    if isinstance(sub, dict):
        sub.setdefault("layout", value)
        locs.setdefault(at + target, loc)


def _looks_like_path(value: str) -> bool:
    return "/" in value or "\\" in value or Path(value).suffix.lower() in _PATHLIKE_SUFFIXES


def _resolve(value: Any, base_dir: Path) -> Any:
    if isinstance(value, str) and value.strip():
        p = Path(value.strip()).expanduser()
        return str(p if p.is_absolute() else (base_dir / p).resolve())
    return value


def _resolve_section_paths(data: dict, base_dir: Path) -> None:
    for section, fields in _PATH_FIELDS.items():
        sub = data.get(section)
        if isinstance(sub, dict):
            for f in fields:
                if f in sub:
                    sub[f] = _resolve(sub[f], base_dir)
            for f in _MAYBE_PATH_FIELDS.get(section, ()):
                if isinstance(sub.get(f), str) and _looks_like_path(sub[f]):
                    sub[f] = _resolve(sub[f], base_dir)
            if section == "avatar" and isinstance(sub.get("background"), dict) and "image" in sub["background"]:
                sub["background"]["image"] = _resolve(sub["background"]["image"], base_dir)   # {image: office.jpg}


# ----------------------------------------------------------------------------- build
def build(data: Any, locs: Locs, source: Path | str | None, default: Loc,
          texts: dict[str, str] | None = None) -> Presentation:
    """Validate merged data into a Presentation; every problem becomes a one-line AvatarError.

    `default` is the location used when nothing more precise is known; `texts` maps a
    file name to its text (used to find the exact line of a bad narration tag).
    """
    if not isinstance(data, dict):
        raise AvatarError("the script must be a mapping of settings (title:, scenes:, ...)",
                          path=default[0], line=default[1])
    data = dict(data)
    data.pop("extends", None)
    if "source" in data:
        raise fail("is set by the loader, not the script", locs, ("source",), default, hint="remove it")
    _scene_overrides(data, locs)
    _check_size(data, locs, default)
    try:
        pres = Presentation.model_validate(data)
    except ValidationError as e:
        raise _first_error(e, locs, default) from None
    _check_narration(pres, locs, default, texts or {})
    _check_files(pres, locs, default)
    if source is not None:
        pres.source = Path(source)
    return pres


def _check_size(data: dict, locs: Locs, default: Loc) -> None:
    """At most MAX_SCENES scenes and MAX_NARRATION_CHARS of narration per scene (avatar.limits)."""
    from avatar.limits import MAX_NARRATION_CHARS, MAX_SCENES

    scenes = data.get("scenes")
    if not isinstance(scenes, list):
        return
    if len(scenes) > MAX_SCENES:
        raise fail(f"{len(scenes)} scenes: at most {MAX_SCENES} are supported", locs, ("scenes",), default,
                   hint="split the presentation into several scripts")
    for i, scene in enumerate(scenes):
        text = scene.get("narration") if isinstance(scene, dict) else None
        if isinstance(text, str) and len(text) > MAX_NARRATION_CHARS:
            raise fail(f"{len(text)} characters: at most {MAX_NARRATION_CHARS} per scene", locs,
                       ("scenes", i, "narration"), default, hint="split it into several scenes")


def _scene_overrides(data: dict, locs: Locs) -> None:
    """Scene voice:/avatar: are partial: merge them over the presentation's dicts."""
    scenes = data.get("scenes")
    if not isinstance(scenes, list):
        return
    data["scenes"] = scenes = [dict(s) if isinstance(s, dict) else s for s in scenes]
    for key in ("voice", "avatar"):
        top = data.get(key) or {}
        if not isinstance(top, dict):
            continue
        for i, scene in enumerate(scenes):
            if isinstance(scene, dict) and isinstance(scene.get(key), dict):
                own = scene[key]
                scene[key] = deep_merge(top, own)
                if key == "avatar" and "background" in own:   # a scene's backdrop replaces, never blends
                    scene[key]["background"] = own["background"]
                for p, loc in list(locs.items()):     # keys that came from the top level point there
                    if p[:1] == (key,):
                        locs.setdefault(("scenes", i) + p, loc)


def _unwrap(tp: Any) -> Any:
    """Optional[X] -> X."""
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _owner_and_type(loc: tuple) -> tuple[type[BaseModel] | None, Any]:
    """Walk the model tree along a pydantic error location."""
    tp: Any = Presentation
    owner = None
    for el in loc:
        tp = _unwrap(tp)
        if isinstance(el, int):
            args = get_args(tp)
            tp = args[0] if args else Any
        elif isinstance(tp, type) and issubclass(tp, BaseModel):
            owner = tp
            f = tp.model_fields.get(el)
            if f is None:
                return owner, None
            tp = f.annotation
        else:
            return owner, None
    return owner, _unwrap(tp)


def _first_error(exc: ValidationError, locs: Locs, default: Loc) -> AvatarError:
    errors = exc.errors(include_url=False)

    def order(err):
        file, line = where(locs, tuple(err["loc"]), default)
        # a mapping given to `Literal | Model`: the literal's complaint is the union's other member
        mismatch = err["type"] == "literal_error" and isinstance(err.get("input"), (dict, list))
        return (file != default[0], err["type"] == "missing", mismatch, line)

    err = min(errors, key=order)
    # union members name themselves in the location ("literal['keep','remove']", "Backdrop"): not fields
    path = tuple(el for el in err["loc"] if isinstance(el, int) or (el.isidentifier() and not el[:1].isupper())) \
        or tuple(err["loc"])   # a top-level key such as `None` (from ": ") is still the key
    kind, value = err["type"], err.get("input")
    hint = None
    if kind == "extra_forbidden":
        _, owner = _owner_and_type(path[:-1])
        is_model = isinstance(owner, type) and issubclass(owner, BaseModel)
        names = [n for n in owner.model_fields if n != "source"] if is_model else []
        if owner is Scene:
            names.append("layout")
        msg = "unknown key"
        hint = did_you_mean(path[-1], names) or (f"valid keys: {', '.join(names)}" if names else None)
    elif kind == "literal_error":
        _, tp = _owner_and_type(path)
        if get_origin(tp) in (Union, types.UnionType):   # e.g. Literal[...] | Backdrop
            tp = next((a for a in get_args(tp) if get_origin(a) is Literal), tp)
        options = get_args(tp) if get_origin(tp) is Literal else ()
        msg = f"unknown value {value!r}"
        hint = did_you_mean(value, options) or (f"use one of: {', '.join(map(str, options))}" if options else None)
    elif kind == "missing":
        msg = "is required"
        if path == ("scenes",):
            msg, hint = "no scenes", "add a 'scenes:' list with at least one scene"
    elif kind == "too_short" and path == ("scenes",):
        msg = "no scenes"
        hint = "add at least one scene under 'scenes:'"
    elif kind == "value_error":
        msg = re.sub(r"^Value error, ", "", err["msg"])
    else:
        msg = err["msg"][:1].lower() + err["msg"][1:]
        if isinstance(value, (str, int, float, bool)) or value is None:
            msg += f", got {value!r}"
        elif isinstance(value, dict):
            msg += ", got a mapping"
        elif isinstance(value, list):
            msg += ", got a list"
    if len(errors) > 1:
        more = f"{len(errors) - 1} more problem{'s' if len(errors) > 2 else ''} after this one"
        hint = f"{hint}{' and' if hint.endswith('?') else ';'} {more}" if hint else more
    return fail(msg, locs, path, default, hint)


def _check_narration(pres: Presentation, locs: Locs, default: Loc, texts: dict[str, str]) -> None:
    for i, scene in enumerate(pres.scenes):
        at = ("scenes", i, "narration")
        try:
            segments = markup.parse(scene.narration)
        except markup.MarkupError as e:
            file, line = _markup_line(e.fragment, where(locs, at, default), texts)
            raise AvatarError(str(e), path=file, line=line, field=field_name(at)) from None
        if scene.slide is not None and scene.slide.reveal:
            n_next = sum(isinstance(s, markup.Marker) and s.name == "next" for s in segments)
            n_items, what = len(scene.slide.reveal_items), "page step" if scene.slide.layout == "pdf" else "bullet"
            if n_next > n_items:
                raise fail(f"{n_next} [next] markers but only {n_items} {what}(s) to reveal",
                           locs, at, default, hint=f"one [next] per {what}")


def _markup_line(bad: str | None, loc: Loc, texts: dict[str, str]) -> Loc:
    """The line of the bad markup `bad`: searched in the file from the narration's line on."""
    file, line = loc
    lines = texts.get(file, "").splitlines()
    if bad:
        for n in range(max(line, 1) - 1, len(lines)):
            if bad in lines[n]:
                return file, n + 1
    return file, line


def _check_files(pres: Presentation, locs: Locs, default: Loc) -> None:
    def check(path: Path | str | None, at: DataPath) -> None:
        if path is None:
            return
        p = Path(path)
        if not p.is_absolute():            # a bare name (preset, font): looked up elsewhere
            return
        if not p.exists():
            raise fail(f"file not found: {p}", locs, at, default,
                       hint="paths are relative to the folder of the file that names them")
        if p.is_dir():
            raise fail(f"is a folder, not a file: {p}", locs, at, default)

    def check_spec(spec, at: DataPath, fields) -> None:
        if spec is not None:
            for f in fields:
                check(getattr(spec, f), at + (f,))

    voice_fields = _PATH_FIELDS["voice"] + ("preset",)
    check_spec(pres.avatar, ("avatar",), _PATH_FIELDS["avatar"])
    check_spec(pres.theme, ("theme",), _PATH_FIELDS["theme"])
    check_spec(pres.voice, ("voice",), voice_fields)
    for i, scene in enumerate(pres.scenes):
        at = ("scenes", i)
        check_spec(scene.slide, at + ("slide",), _PATH_FIELDS["slide"])
        check_spec(scene.avatar, at + ("avatar",), _PATH_FIELDS["avatar"])
        check_spec(scene.voice, at + ("voice",), voice_fields)


__all__ = ["build", "normalize", "deep_merge", "merge_locs", "read_text", "file_title", "field_name", "Locs", "Loc",
           "AVATAR_LAYOUTS", "SLIDE_LAYOUTS"]
