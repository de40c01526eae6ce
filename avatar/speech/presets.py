"""Voice presets: voices/<name>.yaml files that hold VoiceSpec fields.

A preset's first comment line is its description. A preset may name another preset
(`preset: joe`) and change a few fields. Resolving a VoiceSpec fills every field the
user did not write with the preset's value; the user's keys win, except `lexicon`,
whose entries are merged (the user's entries win).
"""
from __future__ import annotations

from pathlib import Path

from avatar.errors import AvatarError
from avatar.resources import voices_dir
from avatar.script.models import VOICE_PATH_FIELDS, VoiceSpec
from avatar.speech import spec_path

_MAX_DEPTH = 8


def list_presets() -> list[tuple[str, str, Path]]:
    """(name, description, path) of every preset in voices/, sorted by name."""
    return [(p.stem, _description(p), p) for p in sorted(voices_dir().glob("*.yaml"), key=lambda p: p.stem)]


def _description(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
        if line.strip():
            break
    return ""


def preset_path(name: str, base_dir: Path | None = None) -> Path:
    """The YAML file a preset name or path refers to; AvatarError listing the presets if none."""
    looks_like_path = "/" in name or "\\" in name or name.endswith((".yaml", ".yml"))
    if looks_like_path:
        path = spec_path(name, base_dir)
        if path.is_file():
            return path
        raise AvatarError(f"voice preset file not found: {path}", field="voice.preset")
    path = voices_dir() / f"{name}.yaml"
    if path.is_file():
        return path
    names = ", ".join(n for n, _, _ in list_presets()) or "none"
    raise AvatarError(f"unknown voice preset {name!r}", field="voice.preset",
                      hint=f"available: {names}; or give the path of a .yaml file")


def load_preset(path: Path) -> VoiceSpec:
    """Read one preset file into a VoiceSpec (relative paths in it are relative to the file)."""
    from pydantic import ValidationError
    from ruamel.yaml import YAML, YAMLError

    try:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as e:
        raise AvatarError(f"not UTF-8 text ({e.reason} at byte {e.start})", path=path,
                          hint="save the voice preset as UTF-8") from None
    except YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise AvatarError(f"invalid YAML: {getattr(e, 'problem', e)}", path=path,
                          line=mark.line + 1 if mark else None) from e
    if not isinstance(data, dict):
        raise AvatarError("a voice preset must be a mapping of VoiceSpec fields", path=path)
    for key in VOICE_PATH_FIELDS:
        if data.get(key) is not None:
            data[key] = spec_path(str(data[key]), path.parent)
    try:
        return VoiceSpec.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(x) for x in err["loc"]) or None
        raise AvatarError(err["msg"], path=path, field=field,
                          hint=f"fields: {', '.join(VoiceSpec.model_fields)}") from e


def resolve(spec: VoiceSpec, base_dir: Path | None = None) -> VoiceSpec:
    """The spec with its preset applied: every field the user did not set comes from the preset.

    Presets may chain (`preset: joe` inside a preset). The result has preset=None, so
    resolving it again changes nothing.
    """
    values = {k: getattr(spec, k) for k in spec.model_fields_set - {"preset"}}
    name, where, seen = spec.preset, base_dir, []
    while name is not None:
        path = preset_path(name, where).resolve()
        if path in seen or len(seen) >= _MAX_DEPTH:
            chain = " -> ".join(p.name for p in [*seen, path])
            raise AvatarError(f"voice presets refer to each other in a loop: {chain}", field="voice.preset")
        seen.append(path)
        base = load_preset(path)
        for key in base.model_fields_set - {"preset"}:
            values.setdefault(key, getattr(base, key))
        values["lexicon"] = {**base.lexicon, **values.get("lexicon", {})}
        name = base.preset if "preset" in base.model_fields_set else None  # the default "joe" is no link
        where = path.parent
    return VoiceSpec(**values, preset=None)
