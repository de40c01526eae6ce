"""Burned-in captions: each cue drawn once (per highlighted word) as an RGBA patch, then blended."""
from __future__ import annotations

import re
from bisect import bisect_right

import numpy as np

from avatar.compose.text import line_height
from avatar.compose.theme import Theme, contrast_ratio, font

HIGHLIGHT_FALLBACK = (255, 214, 10)   # amber: readable on the dark caption box/outline


def caption_px(theme: Theme, h: int) -> int:
    """The caption font size in pixels for a video whose short side is h."""
    return max(8, int(round(theme.caption_font_size * h / 720)))


def _norm(s: str) -> str:
    return re.sub(r"[^\w']", "", s.lower())


def word_slots(cue) -> list[int | None]:
    """For each whitespace token of cue.lines (in order), the index of the cue word it shows (or None)."""
    tokens = [t for line in cue.lines for t in line.split()]
    words = [_norm(w.text) for w in cue.words]
    slots: list[int | None] = []
    j = 0
    for tok in tokens:
        n = _norm(tok)
        k = next((i for i in range(j, min(j + 3, len(words))) if words[i] == n), None)
        if k is None and len(tokens) == len(words):
            k = len(slots)
        slots.append(k)
        if k is not None:
            j = k + 1
    return slots


class CaptionRenderer:
    """Draws cues inside `box` in the theme's caption style; caches the patches."""

    def __init__(self, theme: Theme, box: tuple[int, int, int, int], height: int, *, position: str = "bottom",
                 highlight: bool = False):
        self.theme, self.box, self.position, self.highlight = theme, box, position, highlight
        self.size = caption_px(theme, height)
        acc = theme.accent_color
        self.hl_color = acc if contrast_ratio(acc, (0, 0, 0)) >= 7 else HIGHLIGHT_FALLBACK
        self._cache: dict = {}

    def active_word(self, cue, t: float) -> int | None:
        if not self.highlight or not cue.words:
            return None
        i = bisect_right(cue.words, t, key=lambda w: w.start) - 1
        return i if i >= 0 else None

    def patch(self, key, cue, word: int | None):
        """(x, y, rgb uint8, alpha float32 (h, w)) for a cue with `word` highlighted (cached)."""
        k = (key, word)
        if k not in self._cache:
            self._cache[k] = self._draw(cue, word)
        return self._cache[k]

    def _draw(self, cue, word: int | None):
        from PIL import Image, ImageDraw

        x0, y0, x1, y1 = self.box
        bw = x1 - x0
        lines = [ln for ln in cue.lines if ln.strip()] or [""]
        size = self.size
        while True:   # shrink when a cue is wider or has more lines than the strip was planned for
            pad = int(size * 0.45)
            fnt = font(self.theme.font_bold, size)
            widest = max(fnt.getlength(ln) for ln in lines)
            lh = line_height(fnt, 1.2)
            if (widest + 2 * pad <= bw and lh * len(lines) + int(pad * 1.2) <= y1 - y0) or size <= 8:
                break
            size -= 1
        stroke = max(1, size // 12) if self.theme.caption_style == "outline" else 0
        pw = int(min(bw, widest + 2 * pad))
        ph = lh * len(lines) + int(pad * 1.2)
        img = Image.new("RGBA", (pw + 2 * stroke, ph), (0, 0, 0, 0))
        d = ImageDraw.Draw(img)
        if self.theme.caption_style == "box":
            d.rounded_rectangle((0, 0, img.width - 1, ph - 1), radius=int(size * 0.35), fill=(0, 0, 0, 178))
        slots = word_slots(cue) if word is not None else []
        ti = 0
        y = int(pad * 0.6)
        space = fnt.getlength(" ")
        for ln in lines:
            x = (img.width - fnt.getlength(ln)) / 2
            for tok in ln.split():
                hl = word is not None and ti < len(slots) and slots[ti] == word
                color = self.hl_color if hl else self.theme.caption_color
                d.text((x, y), tok, font=fnt, fill=color + (255,), stroke_width=stroke, stroke_fill=(0, 0, 0, 255))
                x += fnt.getlength(tok) + space
                ti += 1
            y += lh
        arr = np.asarray(img)[: y1 - y0, :bw]   # never outside the strip, even at the smallest size
        ph = arr.shape[0]
        rgb = np.ascontiguousarray(arr[..., :3])
        alpha = arr[..., 3].astype(np.float32) / 255.0
        px = x0 + (bw - arr.shape[1]) // 2
        py = y1 - ph if self.position == "bottom" else y0
        return px, py, rgb, alpha


def blend_patch(frame: np.ndarray, x: int, y: int, rgb: np.ndarray, alpha: np.ndarray) -> None:
    """Alpha-blend an RGB patch onto frame in place (clipped to the frame)."""
    import cv2

    h, w = frame.shape[:2]
    ph, pw = rgb.shape[:2]
    cx0, cy0 = max(0, -x), max(0, -y)
    cx1, cy1 = min(pw, w - x), min(ph, h - y)
    if cx1 <= cx0 or cy1 <= cy0:
        return
    region = frame[y + cy0:y + cy1, x + cx0:x + cx1]
    a = np.ascontiguousarray(alpha[cy0:cy1, cx0:cx1])
    region[:] = cv2.blendLinear(np.ascontiguousarray(rgb[cy0:cy1, cx0:cx1]), region, a, 1.0 - a)
