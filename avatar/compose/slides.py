"""Slides drawn with Pillow: one static RGB image per (slide, revealed bullets), cached.

Every layout draws inside `content_box` (the part of the frame the avatar and the
captions leave free); the title may use a wider `title_box`. Sizes are relative to the
video's short side (720 = reference), so a slide looks the same at any resolution.
"""
from __future__ import annotations

import functools
import warnings
from pathlib import Path

import numpy as np

from avatar.compose.images import fit_image, load_image, render_pdf_page
from avatar.compose.layout import Box, title_band
from avatar.compose.text import Block, fit_paragraphs, line_height
from avatar.compose.theme import Theme, font, render_background


def default_boxes(size: tuple[int, int]) -> tuple[Box, Box]:
    """(content_box, title_box) of a frame with nothing else on it."""
    w, h = size
    m = int(round(0.05 * min(w, h)))
    content = (m, m, w - m, h - m)
    return content, title_band(content, min(w, h))


def render_slide(slide, theme: Theme, size: tuple[int, int], *, content_box: Box | None = None,
                 title_box: Box | None = None, revealed: int | None = None, base_dir: Path | None = None,
                 name: str | None = None) -> np.ndarray:
    """Draw `slide` (avatar.script.models.Slide) at `size` = (w, h): (h, w, 3) uint8 RGB, read-only.

    revealed=k draws only the first k bullets (layout computed with all of them, so
    nothing moves as they appear). Text wraps and shrinks to fit; what still does not
    fit is cut with an ellipsis and a warning naming the slide (`name`, else its title).
    Relative image/PDF paths are read from base_dir. Results are cached.
    """
    size = (int(size[0]), int(size[1]))
    if content_box is None:
        content_box = default_boxes(size)[0]
    if title_box is None:
        title_box = title_band(content_box, min(size))
    return _render_cached(slide.model_dump_json(), theme, size, tuple(map(int, content_box)),
                          tuple(map(int, title_box)), revealed, str(base_dir) if base_dir else None, name)


@functools.lru_cache(maxsize=8)   # a scene keeps its own reveal steps; this serves the next scene's crossfade
def _render_cached(slide_json, theme, size, content_box, title_box, revealed, base_dir, name) -> np.ndarray:
    from PIL import Image

    from avatar.script.models import Slide

    slide = Slide.model_validate_json(slide_json)
    bg = render_background(slide.background or theme.background, size,
                           None if slide.background else theme.background_image)
    img = Image.fromarray(bg)
    d = _Drawer(img, slide, theme, size, content_box, title_box, revealed,
                Path(base_dir) if base_dir else None, name)
    d.draw()
    arr = np.asarray(img.convert("RGB")).copy()
    arr.flags.writeable = False
    return arr


class _Drawer:
    def __init__(self, img, slide, theme: Theme, size, content, title_box, revealed, base_dir, name):
        from PIL import ImageDraw

        self.img, self.slide, self.theme = img, slide, theme
        self.w, self.h = size
        self.u = min(self.w, self.h) / 720.0
        self.content, self.title_box = content, title_box
        self.revealed = revealed
        self.base_dir = base_dir
        self.name = name or (f"slide {slide.title!r}" if slide.title else f"{slide.layout} slide")
        self.draw_ = ImageDraw.Draw(img)

    # ---------------------------------------------------------------- helpers
    def px(self, v: float) -> int:
        return max(1, int(round(v * self.u)))

    def path(self, p: Path) -> Path:
        p = Path(p).expanduser()
        return p if p.is_absolute() or self.base_dir is None else self.base_dir / p

    def warn(self, what: str) -> None:
        warnings.warn(f"{self.name}: {what} does not fit; it was cut (shorten it or use a smaller layout)",
                      stacklevel=4)

    def body_box(self) -> Box:
        x0, y0, x1, y1 = self.content
        if self.slide.title:
            y0 = max(y0, self.title_box[3] + self.px(10))
        return x0, y0, x1, y1

    def draw(self) -> None:
        getattr(self, f"_{self.slide.layout}")()
        self.logo()

    def text_block(self, block: Block, x: int, y: int, color, *, align: str = "left", width: int = 0) -> int:
        for i, para in enumerate(block.paragraphs):
            if i:
                y += block.gap
            for line in para:
                lx = x
                if align == "center":
                    lx = x + (width - block.font.getlength(line)) / 2
                elif align == "right":
                    lx = x + width - block.font.getlength(line)
                self.draw_.text((lx, y), line, font=block.font, fill=color)
                y += block.line_h
        return y

    def header(self) -> None:
        """Slide title at the top (left aligned) with an accent rule under it."""
        if not self.slide.title:
            return
        x0, y0, x1, y1 = self.title_box
        x1 -= self.logo_room("top")
        b = fit_paragraphs([self.slide.title], self.theme.font_bold, self.px(44), self.px(22), x1 - x0,
                           y1 - y0 - self.px(12), spacing=1.15)
        if not b.fits:
            self.warn("the title")
        top = y0 + (y1 - y0 - self.px(12) - b.height) // 2
        bottom = self.text_block(b, x0, top, self.theme.title_color)
        ry = min(y1 - self.px(6), bottom + self.px(8))
        self.draw_.rectangle((x0, ry, x0 + self.px(90), ry + self.px(4)), fill=self.theme.accent_color)

    def fit_bullets(self, items: list[str], box: Box, max_px: int | None = None) -> Block:
        x0, y0, x1, y1 = box
        return fit_paragraphs(items, self.theme.font, max_px or self.px(30), min(self.px(15), max_px or 10**6),
                              x1 - x0, y1 - y0, spacing=1.25, gap=0.55, indent=1.3)

    def bullets(self, items: list[str], box: Box, *, max_px: int | None = None, shown: int | None = None,
                what: str = "the bullets") -> None:
        x0, y0, x1, y1 = box
        b = self.fit_bullets(items, box, max_px)
        if not b.fits:
            self.warn(what)
        ind = int(1.3 * b.size)
        y = y0
        asc = b.font.getmetrics()[0]
        for i, para in enumerate(b.paragraphs):
            if shown is not None and i >= shown:
                break
            if i:
                y += b.gap
            r = max(2, b.size * 0.17)
            cy = y + asc * 0.62
            cx = x0 + b.size * 0.35
            self.draw_.ellipse((cx - r, cy - r, cx + r, cy + r), fill=self.theme.accent_color)
            for line in para:
                self.draw_.text((x0 + ind, y), line, font=b.font, fill=self.theme.text_color)
                y += b.line_h

    def paragraph(self, text: str, box: Box, *, max_size: float = 30, what: str = "the text") -> int:
        """Paragraphs (blank-line separated) fitted into `box`; returns the y below the last line."""
        x0, y0, x1, y1 = box
        b = fit_paragraphs(text.split("\n\n"), self.theme.font, self.px(max_size), self.px(15),
                           x1 - x0, y1 - y0, gap=0.6)
        if not b.fits:
            self.warn(what)
        return self.text_block(b, x0, y0, self.theme.text_color)

    def picture(self, box: Box, mode: str) -> None:
        if self.slide.image is None:
            return
        x0, y0, x1, y1 = box
        im = fit_image(load_image(self.path(self.slide.image)), (x1 - x0, y1 - y0), mode)
        self.img.paste(im, (x0 + (x1 - x0 - im.width) // 2, y0 + (y1 - y0 - im.height) // 2), im)

    def logo_room(self, edge: str) -> int:
        """Width the logo takes at the right of the title band when it sits top-right."""
        if self.theme.logo is None or not self.theme.logo_position.startswith(edge) \
                or not self.theme.logo_position.endswith("right"):
            return 0
        return self.logo_size()[0] + self.px(16)

    @functools.cached_property
    def logo_image(self):
        """The theme's logo, read once per slide (the title band and the corner both need it)."""
        return load_image(self.theme.logo, field="theme.logo")

    def logo_size(self) -> tuple[int, int]:
        im = self.logo_image
        h = self.px(48)
        return max(1, int(im.width * h / im.height)), h

    def logo(self) -> None:
        if self.theme.logo is None:
            return
        im = fit_image(self.logo_image, self.logo_size(), "fit")
        x0, y0, x1, y1 = self.content
        pos = self.theme.logo_position
        if pos.startswith("top"):      # the title band may be wider than the content (pip at the bottom)
            x0, x1 = self.title_box[0], self.title_box[2]
        x = x1 - im.width if pos.endswith("right") else x0
        y = y0 if pos.startswith("top") else y1 - im.height
        if pos.endswith("left") and pos.startswith("top") and self.slide.title:
            y = y1 - im.height   # keep the title corner free
        self.img.paste(im, (x, y), im)

    # ---------------------------------------------------------------- layouts
    def _blank(self) -> None:
        pass

    def _title(self) -> None:
        x0, y0, x1, y1 = self.content
        w = x1 - x0
        parts: list[tuple[Block, tuple]] = []
        if self.slide.title:
            tb = fit_paragraphs([self.slide.title], self.theme.font_bold, self.px(60), self.px(26), w,
                                int((y1 - y0) * 0.55), spacing=1.15)
            if not tb.fits:
                self.warn("the title")
            parts.append((tb, self.theme.title_color))
        sub = self.slide.subtitle or self.slide.text
        if sub:
            sb = fit_paragraphs([sub], self.theme.font, self.px(32), self.px(16), w, int((y1 - y0) * 0.3))
            if not sb.fits:
                self.warn("the subtitle")
            parts.append((sb, self.theme.text_color))
        rule = self.px(28)
        total = sum(b.height for b, _ in parts) + (rule if len(parts) == 2 else 0)
        y = y0 + (y1 - y0 - total) // 2
        for i, (b, color) in enumerate(parts):
            if i == 1:
                cx = x0 + w // 2
                self.draw_.rectangle((cx - self.px(50), y + rule // 2 - self.px(2), cx + self.px(50),
                                      y + rule // 2 + self.px(2)), fill=self.theme.accent_color)
                y += rule
            y = self.text_block(b, x0, y, color, align="center", width=w)

    def _bullets(self) -> None:
        self.header()
        self.bullets_or_text(self.body_box())

    def bullets_or_text(self, box) -> None:
        """The slide's paragraph text, then its bullets (revealed so far) below it, in `box`.
        With both, the text takes what it needs of up to 40% of the height."""
        x0, y0, x1, y1 = box
        if self.slide.text and self.slide.bullets:
            bottom = self.paragraph(self.slide.text, (x0, y0, x1, y0 + int((y1 - y0) * 0.4)), max_size=28)
            box = (x0, bottom + self.px(20), x1, y1)
        elif self.slide.text:
            self.paragraph(self.slide.text, box)
        if self.slide.bullets:
            self.bullets(self.slide.bullets, box, shown=self.revealed)

    def _video(self) -> None:
        self.header()   # the clip plays in the body box, frame by frame (avatar.compose.video_slide)

    def _image(self) -> None:
        self.header()
        self.picture(self.body_box(), self.slide.fit)

    def _image_text(self) -> None:
        self.header()
        x0, y0, x1, y1 = self.body_box()
        gap = self.px(28)
        mid = x0 + (x1 - x0 - gap) // 2
        self.picture((x0, y0, mid, y1), self.slide.fit)
        self.bullets_or_text((mid + gap, y0, x1, y1))

    def _two_columns(self) -> None:
        self.header()
        x0, y0, x1, y1 = self.body_box()
        gap = self.px(36)
        mid = x0 + (x1 - x0 - gap) // 2
        left, right = (x0, y0, mid, y1), (mid + gap, y0, x1, y1)
        size = min(self.fit_bullets(self.slide.left, left).size, self.fit_bullets(self.slide.right, right).size)
        n_left = len(self.slide.left)                                             # reveal: left first
        shown_left = None if self.revealed is None else min(self.revealed, n_left)
        shown_right = None if self.revealed is None else max(0, self.revealed - n_left)
        self.bullets(self.slide.left, left, max_px=size, shown=shown_left, what="the left column")
        self.bullets(self.slide.right, right, max_px=size, shown=shown_right, what="the right column")
        self.draw_.line(((mid + gap // 2, y0), (mid + gap // 2, y1 - self.px(10))),
                        fill=self.theme.accent_color, width=self.px(2))

    def _quote(self) -> None:
        x0, y0, x1, y1 = self.content
        mark = font(self.theme.font_bold, self.px(120))
        pad = int(mark.getlength("“") * 1.1)
        box_w = x1 - x0 - 2 * pad
        author = f"— {self.slide.author}" if self.slide.author else ""
        af = font(self.theme.font_bold, self.px(26))
        ah = line_height(af) if author else 0
        qb = fit_paragraphs([self.slide.quote or self.slide.text or ""], self.theme.font, self.px(40), self.px(18),
                            box_w, y1 - y0 - ah - self.px(80))
        if not qb.fits:
            self.warn("the quote")
        total = qb.height + (ah + self.px(20) if author else 0)
        y = y0 + (y1 - y0 - total) // 2
        self.draw_.text((x0, max(y0, y - self.px(50))), "“", font=mark, fill=self.theme.accent_color)
        y = self.text_block(qb, x0 + pad, y, self.theme.title_color)
        if author:
            self.draw_.text((x0 + pad + box_w - af.getlength(author), y + self.px(20)), author, font=af,
                            fill=self.theme.accent_color)

    def _code(self) -> None:
        from pygments.lexers import TextLexer, get_lexer_by_name, guess_lexer
        from pygments.styles import get_style_by_name
        from pygments.token import Text
        from pygments.util import ClassNotFound

        from avatar.compose.theme import parse_color

        self.header()
        x0, y0, x1, y1 = self.body_box()
        code = (self.slide.code or "").expandtabs(4).rstrip("\n")
        try:
            lexer = get_lexer_by_name(self.slide.language) if self.slide.language else guess_lexer(code)
        except ClassNotFound:
            lexer = TextLexer()
        style = get_style_by_name(self.theme.code_style)
        panel = parse_color(style.background_color or "#f8f8f8")
        pad = self.px(20)
        bw, bh = x1 - x0 - 2 * pad, y1 - y0 - 2 * pad
        lines = code.split("\n")
        longest = max(lines, key=len) if lines else ""
        size = self.px(24)
        while True:
            fnt = font(self.theme.font_mono, size)
            lh = line_height(fnt, 1.3)
            fits = fnt.getlength(longest) <= bw and lh * len(lines) <= bh
            if fits or size <= self.px(11):
                break
            size = max(self.px(11), int(size * 0.92))
        if not fits:
            self.warn("the code")
        y1 = min(y1, y0 + 2 * pad + lh * len(lines))      # the panel hugs the code
        self.draw_.rounded_rectangle((x0, y0, x1 - 1, y1 - 1), radius=self.px(12), fill=panel)
        base = style.style_for_token(Text)["color"]
        default = parse_color("#" + base) if base else ((230, 230, 230) if _dark(panel) else (30, 30, 30))
        x, y = x0 + pad, y0 + pad
        for ttype, value in lexer.get_tokens(code):
            st = style.style_for_token(ttype)
            color = parse_color("#" + st["color"]) if st["color"] else default
            for j, part in enumerate(value.split("\n")):
                if j:
                    x, y = x0 + pad, y + lh
                if y + lh > y1 - pad + 1:
                    return
                if part:
                    if x < x1 - pad:
                        self.draw_.text((x, y), part, font=fnt, fill=color)
                    x += fnt.getlength(part)

    def _pdf(self) -> None:
        if self.slide.pdf is None:
            return
        x0, y0, x1, y1 = self.content
        pages = self.slide.pages
        number = (pages[-1 if self.revealed is None else min(self.revealed, len(pages) - 1)] if pages
                  else self.slide.page or 1)   # build steps: the page of the step reached so far
        page = render_pdf_page(self.path(self.slide.pdf), number, (x1 - x0, y1 - y0))
        self.img.paste(page, (x0 + (x1 - x0 - page.width) // 2, y0 + (y1 - y0 - page.height) // 2))


def _dark(rgb) -> bool:
    return sum(rgb) < 3 * 110


__all__ = ["render_slide", "default_boxes", "title_band"]
