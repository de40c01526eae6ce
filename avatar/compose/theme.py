"""Themes: templates/themes/<name>.yaml resolved into a frozen Theme, plus fonts and backgrounds.

A theme file holds ThemeSpec fields (and `code_style`, a Pygments style name). The
ThemeSpec given by the presentation names the theme and overrides any field it sets.
Font sizes are pixels at 720p; everything scales with the video's short side.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avatar.errors import AvatarError
from avatar.resources import assets_dir, themes_dir

RGB = tuple[int, int, int]
FONT_FIELDS = ("font", "font_bold", "font_mono")
COLOR_FIELDS = ("text_color", "title_color", "accent_color", "caption_color")


@dataclass(frozen=True)
class Theme:
    name: str
    font: Path                      # regular text
    font_bold: Path                 # titles
    font_mono: Path                 # code
    background: str                 # "#rrggbb" or "linear-gradient(#a, #b)" (as written)
    background_image: Path | None
    text_color: RGB
    title_color: RGB
    accent_color: RGB
    logo: Path | None
    logo_position: str              # a corner: top-right, ...
    caption_font_size: int          # pixels at 720p (scaled with the short side)
    caption_color: RGB
    caption_style: str              # outline | box
    code_style: str = "friendly"    # Pygments style
    path: Path | None = None        # the theme file it came from


def list_themes() -> list[str]:
    return sorted(p.stem for p in themes_dir().glob("*.yaml"))


def parse_color(value: str, *, field: str = "color", path: Path | str | None = None) -> RGB:
    """'#rgb', '#rrggbb' or a CSS colour name -> (r, g, b)."""
    from PIL import ImageColor

    try:
        rgb = ImageColor.getrgb(str(value).strip())
    except ValueError:
        raise AvatarError(f"{value!r} is not a colour", path=path, field=field,
                          hint="use #rrggbb, #rgb or a CSS colour name") from None
    return tuple(rgb[:3])  # type: ignore[return-value]


_GRADIENT = re.compile(r"linear-gradient\(\s*(?:(to\s+(?:right|bottom))\s*,\s*)?([^,]+?)\s*,\s*([^)]+?)\s*\)", re.I)


def background_colors(spec: str, *, field: str = "background", path=None) -> tuple[RGB, RGB, str]:
    """A background string -> (top/left colour, bottom/right colour, direction 'bottom'|'right')."""
    m = _GRADIENT.fullmatch(spec.strip())
    if m:
        direction = "right" if (m.group(1) or "").lower().endswith("right") else "bottom"
        return parse_color(m.group(2), field=field, path=path), parse_color(m.group(3), field=field, path=path), direction
    if spec.strip().lower().startswith("linear-gradient"):
        raise AvatarError(f"{spec!r} is not a gradient this tool reads", path=path, field=field,
                          hint="write linear-gradient(#top, #bottom) or linear-gradient(to right, #left, #right)")
    c = parse_color(spec, field=field, path=path)
    return c, c, "bottom"


def render_background(spec: str, size: tuple[int, int], image: Path | None = None) -> np.ndarray:
    """The background as an (h, w, 3) uint8 array: an image (fill), a gradient or a colour."""
    w, h = size
    if image is not None:
        from avatar.compose.images import load_image, fit_image

        return np.asarray(fit_image(load_image(image), (w, h), "fill").convert("RGB"))
    a, b, direction = background_colors(spec)
    n = h if direction == "bottom" else w
    t = np.linspace(0.0, 1.0, n, dtype=np.float32)[:, None]
    ramp = (np.array(a, np.float32) * (1 - t) + np.array(b, np.float32) * t).round().astype(np.uint8)
    if direction == "bottom":
        return np.ascontiguousarray(np.broadcast_to(ramp[:, None, :], (h, w, 3)))
    return np.ascontiguousarray(np.broadcast_to(ramp[None, :, :], (h, w, 3)))


def _luminance(rgb: RGB) -> float:
    def lin(c):
        c = c / 255.0
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (lin(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: RGB, b: RGB) -> float:
    """WCAG contrast ratio between two colours (1..21)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def resolve_font(name: str, *, field: str = "font", base_dir: Path | None = None) -> Path:
    """A bundled font name (DejaVuSans, DejaVuSans-Bold, DejaVuSansMono) or a .ttf/.otf path."""
    bundled = assets_dir() / "fonts"
    candidates = [bundled / name, bundled / f"{name}.ttf"]
    p = Path(name).expanduser()
    if not p.is_absolute() and base_dir is not None:
        candidates.insert(0, base_dir / p)
    candidates.insert(0, p)
    for c in candidates:
        if c.is_file():
            return c.resolve()
    names = ", ".join(sorted(f.stem for f in bundled.glob("*.ttf")))
    raise AvatarError(f"font {name!r} not found", field=field, hint=f"give a .ttf path or one of: {names}")


@functools.lru_cache(maxsize=128)
def font(path: Path, size: int):
    """A Pillow FreeType font (cached)."""
    from PIL import ImageFont

    return ImageFont.truetype(str(path), max(4, int(size)))


@functools.lru_cache(maxsize=16)
def _codepoints(path: str) -> frozenset[int] | None:
    """The characters a font file maps to glyphs (fontTools; the first font of a collection),
    None when its character map cannot be read."""
    try:
        from fontTools.ttLib import TTFont

        with TTFont(path, lazy=True, fontNumber=0) as f:
            return frozenset(f.getBestCmap() or ())
    except Exception:   # an unusual font file: Pillow may still draw it; nothing is claimed about it
        return None


def undrawable(path: Path | str, text: str) -> str:
    """The distinct characters of `text` that the font at `path` has no glyph for, in order of
    appearance (Pillow draws those as empty boxes): emoji or CJK with a Latin font. Spaces,
    control and format characters and combining marks are not counted; printable ASCII is
    taken as drawable."""
    import unicodedata

    rare = [ch for ch in text if ord(ch) > 126]   # printable ASCII: every text font has it (no cmap read)
    have = _codepoints(str(path)) if rare else None
    if have is None:
        return ""
    out: dict[str, None] = {}
    for ch in rare:
        if ord(ch) not in have and not ch.isspace() and unicodedata.category(ch) not in ("Cc", "Cf", "Mn", "Me"):
            out[ch] = None
    return "".join(out)


@functools.lru_cache(maxsize=32)
def font_having(chars: str, style: str = "regular") -> tuple[str, str] | None:
    """(a font file installed on this machine with glyphs for as many of `chars` as any, the ones
    it still lacks), found through fontconfig's `fc-list`; None without it, or when no font has
    any of the first few: what to suggest when the theme's font lacks them. style: "bold", "mono"
    or "regular", preferred among fonts that cover as much; coverage is checked with undrawable()."""
    import shutil
    import subprocess

    exe = shutil.which("fc-list")
    if not exe or not chars:
        return None
    found: dict[str, str] = {}
    for ch in chars[:4]:   # the first character some installed font has (an emoji may be in none)
        pattern = f":charset={ord(ch):x}" + (":spacing=100" if style == "mono" else "")
        try:
            out = subprocess.run([exe, pattern, "file", "style"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return None
        for line in out.splitlines():
            path, _, styles = line.partition(":")
            if path.lower().endswith((".ttf", ".otf", ".ttc")):
                found[path] = styles.lower()
        if found:
            break

    missing = {path: undrawable(path, chars) for path in found}   # each font's cmap read once

    def rank(path: str) -> tuple:
        styles = found[path]
        return (len(missing[path]), ("bold" in styles) != (style == "bold"),
                "italic" in styles or "oblique" in styles, "serif" in path.lower(), path)
    best = min(found, key=rank, default=None)
    return None if best is None else (best, missing[best])


def _read_theme_file(name: str) -> tuple[dict, Path]:
    from avatar.script.models import ThemeSpec
    from avatar.script.yaml_loader import parse_yaml

    path = Path(name).expanduser()
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        path = themes_dir() / f"{name}.yaml"
    if not path.is_file():
        raise AvatarError(f"unknown theme {name!r}", field="theme.name",
                          hint=f"use one of: {', '.join(list_themes())}, or a path to a theme .yaml")
    data, locs = parse_yaml(path.read_text(encoding="utf-8"), str(path))   # syntax errors: one line
    data = data or {}
    if not isinstance(data, dict):
        raise AvatarError("a theme file must be a mapping of fields", path=path)
    allowed = set(ThemeSpec.model_fields) - {"name"} | {"code_style"}
    for key in data:
        if key not in allowed:
            raise AvatarError(f"unknown theme field {key!r}", path=path, line=locs[(key,)][1], field=key,
                              hint=f"fields: {', '.join(sorted(allowed))}")
    return data, path


def load_theme(spec=None, base_dir: Path | None = None) -> Theme:
    """ThemeSpec (or None = default) -> Theme. Fields set in `spec` override the named theme file.

    Relative paths in the spec (fonts, logo, background image) are read from `base_dir`
    (the presentation's folder); those in a theme file from the theme file's folder.
    """
    from avatar.script.models import ThemeSpec

    spec = spec or ThemeSpec()
    data, theme_path = _read_theme_file(spec.name)
    overrides = spec.model_dump(exclude={"name"}, exclude_none=True)
    merged = {**data, **overrides}
    where = {k: (base_dir if k in overrides else theme_path.parent) for k in merged}

    def path_of(key):
        v = merged.get(key)
        if v is None:
            return None
        p = Path(v).expanduser()
        if not p.is_absolute() and where[key] is not None:
            p = where[key] / p
        if not p.is_file():
            raise AvatarError(f"file not found: {p}", field=f"theme.{key}")
        return p

    fonts = {k: resolve_font(str(merged.get(k, d)), field=f"theme.{k}", base_dir=where.get(k))
             for k, d in zip(FONT_FIELDS, ("DejaVuSans", "DejaVuSans-Bold", "DejaVuSansMono"))}
    colors = {k: parse_color(merged.get(k, "#ffffff" if k == "caption_color" else "#222222"), field=f"theme.{k}",
                             path=None if k in overrides else theme_path)
              for k in COLOR_FIELDS}
    background = str(merged.get("background", "#ffffff"))
    background_colors(background, field="theme.background")   # validate now
    style = str(merged.get("code_style", "friendly"))
    from pygments.styles import get_all_styles

    if style not in set(get_all_styles()):
        raise AvatarError(f"unknown Pygments style {style!r}", path=theme_path, field="code_style",
                          hint="e.g. friendly, monokai, solarized-light")
    caption_style = merged.get("caption_style", "box")
    if caption_style not in ("outline", "box"):
        raise AvatarError(f"caption_style {caption_style!r}", path=theme_path, field="caption_style",
                          hint="use outline or box")
    return Theme(
        name=theme_path.stem, background=background, background_image=path_of("background_image"),
        logo=path_of("logo"), logo_position=str(merged.get("logo_position", "top-right")),
        caption_font_size=int(merged.get("caption_font_size", 30)), caption_style=caption_style,
        code_style=style, path=theme_path.resolve(), **fonts, **colors)
