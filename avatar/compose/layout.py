"""Where things go on screen: avatar, slide content, slide title, captions.

All boxes are (x0, y0, x1, y1) in video pixels. The rules: the avatar never covers
the slide's content or title, and captions never sit under the avatar (except in the
full-screen layout, where they are drawn over it with an outline or a box).
"""
from __future__ import annotations

from dataclasses import dataclass

from avatar.compose.captions import caption_px
from avatar.compose.text import line_height
from avatar.compose.theme import Theme, font

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Layout:
    mode: str                   # pip | side | full | none
    size: tuple[int, int]
    avatar_box: Box | None      # where the face image goes (inside its border)
    border: int                 # border thickness around avatar_box (pip only)
    shape: str                  # circle | rounded | rect
    content_box: Box | None     # slide area (None: no slide shown)
    title_box: Box | None       # slide title band
    caption_box: Box | None     # caption strip (None: no burned captions)
    badge_corner: str           # top-left | top-right
    zoom: float                 # source crop height / face-box height (see SceneComposer)
    shift: float                # crop centre moved down by this many face heights


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def caption_height(theme: Theme, captions, h: int) -> int:
    """Height of the caption strip (h: the video's short side): max_lines lines of the theme's
    caption font plus padding."""
    fs = caption_px(theme, h)
    return captions.max_lines * line_height(font(theme.font_bold, fs), 1.2) + int(fs * 0.8)


def plan_layout(presentation, scene, theme: Theme) -> Layout:
    """Boxes for one scene (presentation.avatar_for(scene) decides the layout)."""
    w, h = presentation.size
    spec = presentation.avatar_for(scene)
    mode = spec.layout
    has_slide = scene.slide is not None
    if not has_slide and mode != "none":
        mode = "full"   # no slide: the presenter fills the frame
    u = min(w, h)   # sizes scale with the short side (720 = reference)
    m = int(round(0.04 * u))
    caps = presentation.captions
    cap_h = caption_height(theme, caps, u) if (caps.enabled and caps.burn) else 0
    cap_top = caps.position == "top"
    zoom, shift = 1.0, 0.0

    def captions_in(x0: int, x1: int, y0: int, y1: int) -> Box | None:
        """Caption strip at the top or bottom of the vertical span y0..y1, across x0..x1."""
        if not cap_h:
            return None
        if cap_top:
            return (x0 + m, y0 + m // 2, x1 - m, y0 + m // 2 + cap_h)
        return (x0 + m, y1 - m // 2 - cap_h, x1 - m, y1 - m // 2)

    def content_around(x0: int, x1: int, y0: int, y1: int, cap: Box | None) -> Box:
        """Slide content box in x0..x1, y0..y1 minus the caption strip, with margins."""
        top, bottom = y0 + m, y1 - m
        if cap is not None and cap[0] < x1 and x0 < cap[2]:
            if cap_top:
                top = max(top, cap[3] + m // 2)
            else:
                bottom = min(bottom, cap[1] - m // 2)
        return (x0 + m, top, x1 - m, bottom)

    badge = "top-left"
    if mode == "none":
        cap = captions_in(0, w, 0, h)
        content = content_around(0, w, 0, h, cap)
        return Layout(mode, (w, h), None, 0, "rect", content, title_band(content, u), cap, badge, zoom, shift)

    if mode == "full":
        cap = captions_in(0, w, 0, h)
        return Layout(mode, (w, h), (0, 0, w, h), 0, "rect", None, None, cap, badge, 1.7, 0.18)

    if mode == "side":
        if w >= h:   # a full-height panel at the left or right
            pw = int(round(0.38 * w)) & ~1
            left = spec.position.endswith("left")
            avatar = (0, 0, pw, h) if left else (w - pw, 0, w, h)
            sx0, sx1 = (pw, w) if left else (0, w - pw)
            cap = captions_in(sx0, sx1, 0, h)
            content = content_around(sx0, sx1, 0, h, cap)
            badge = "top-right" if left else "top-left"
        else:        # portrait video: a full-width panel at the bottom (or top)
            ph = int(round(0.4 * h)) & ~1
            top = spec.position.startswith("top")
            avatar = (0, 0, w, ph) if top else (0, h - ph, w, h)
            sy0, sy1 = (ph, h) if top else (0, h - ph)
            cap = captions_in(0, w, sy0, sy1)
            content = content_around(0, w, sy0, sy1, cap)
            badge = "top-left" if not top else "bottom-left"
        return Layout(mode, (w, h), avatar, 0, "rect", content, title_band(content, u), cap, badge, 1.45, 0.12)

    # pip: a square in a corner
    b = spec.border
    s = int(round(spec.size * h))
    s = min(s, w - 2 * m - 2 * b, h - 2 * m - 2 * b)
    right, bottom = spec.position.endswith("right"), spec.position.startswith("bottom")
    ax0 = w - m - b - s if right else m + b
    ay0 = h - m - b - s if bottom else m + b
    avatar = (ax0, ay0, ax0 + s, ay0 + s)
    outer = (ax0 - b - m // 2, ay0 - b - m // 2, ax0 + s + b + m // 2, ay0 + s + b + m // 2)
    fx0, fx1 = (0, outer[0]) if right else (outer[2], w)     # the free column beside the avatar
    # slide and captions go in the free column beside the avatar, or in the full-width band
    # above/below it (e.g. portrait video): whichever leaves the slide more room
    sy0, sy1 = (0, outer[1]) if bottom else (outer[3], h)
    cap = captions_in(fx0, fx1, 0, h)
    content = content_around(fx0, fx1, 0, h, cap)
    band_cap = captions_in(0, w, sy0, sy1)
    band = content_around(0, w, sy0, sy1, band_cap)

    def area(b: Box) -> int:
        return max(0, b[2] - b[0]) * max(0, b[3] - b[1])
    if fx1 - fx0 < 0.4 * w or area(band) > area(content):
        cap, content = band_cap, band
    title = title_band(content, u)
    wide_title = (m, title[1], w - m, title[3])
    if not _overlap(wide_title, outer) and (cap is None or not _overlap(wide_title, cap)):
        title = wide_title
    badge = "top-right" if (not right and not bottom) else "top-left"
    return Layout("pip", (w, h), avatar, b, spec.shape, content, title, cap, badge, zoom, shift)


def title_band(content: Box, h: int) -> Box:
    """The slide title band at the top of `content` (h: the video's short side)."""
    x0, y0, x1, _ = content
    return (x0, y0, x1, y0 + int(round(0.15 * h)))
