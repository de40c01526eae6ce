"""Text layout with Pillow: wrap to a width, shrink to fit a box."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from avatar.compose.theme import font


def wrap(text: str, fnt, width: float) -> list[str]:
    """Greedy word wrap (explicit newlines kept); a word longer than the width is split."""
    lines: list[str] = []
    for para in text.split("\n"):
        words = para.split()
        if not words:
            lines.append("")
            continue
        cur = ""
        for word in words:
            trial = f"{cur} {word}" if cur else word
            if fnt.getlength(trial) <= width:
                cur = trial
                continue
            if cur:
                lines.append(cur)
            while fnt.getlength(word) > width and len(word) > 1:   # hard-split very long words
                cut = max(1, int(len(word) * width / fnt.getlength(word)))
                while cut > 1 and fnt.getlength(word[:cut]) > width:
                    cut -= 1
                lines.append(word[:cut])
                word = word[cut:]
            cur = word
        lines.append(cur)
    return lines


def line_height(fnt, spacing: float = 1.25) -> int:
    ascent, descent = fnt.getmetrics()
    return int(round((ascent + descent) * spacing))


@dataclass
class Block:
    """Paragraphs wrapped at one font size."""

    font: object
    size: int
    paragraphs: list[list[str]]   # wrapped lines per paragraph
    line_h: int
    gap: int                      # extra pixels between paragraphs
    fits: bool

    @property
    def height(self) -> int:
        n = sum(len(p) for p in self.paragraphs)
        return n * self.line_h + max(0, len(self.paragraphs) - 1) * self.gap


def fit_paragraphs(paragraphs: list[str], font_path: Path, max_size: int, min_size: int, width: int, height: int,
                   *, spacing: float = 1.25, gap: float = 0.5, indent: float = 0.0) -> Block:
    """Largest font size (max_size down to min_size) at which the paragraphs, wrapped to
    `width - indent*size`, fit in `height`. If even min_size does not fit, the block is
    cut to the lines that fit, the last one ending in an ellipsis, and `fits` is False."""
    size = max_size
    while True:
        fnt = font(font_path, size)
        lh = line_height(fnt, spacing)
        g = int(gap * size)
        wrapped = [wrap(p, fnt, max(1, width - indent * size)) for p in paragraphs]
        block = Block(fnt, size, wrapped, lh, g, True)
        widest = max((fnt.getlength(line) for p in wrapped for line in p), default=0)
        if block.height <= height and widest <= width - indent * size + 0.5:
            return block
        if size <= min_size:
            break
        size = max(min_size, int(size * 0.92))
    # does not fit at the minimum size: keep what fits
    block.fits = False
    kept, used = [], 0
    for p in block.paragraphs:
        room = (height - used) // lh if not kept else (height - used - g) // lh
        if room <= 0:
            break
        part = p[:room]
        kept.append(part)
        used += len(part) * lh + (g if len(kept) > 1 else 0)
        if len(part) < len(p):
            break
    if kept and kept[-1]:
        kept[-1][-1] = _ellipsize(kept[-1][-1], fnt, width - indent * size)
    block.paragraphs = kept
    return block


def _ellipsize(line: str, fnt, width: float) -> str:
    s = line.rstrip() + "…"
    while len(s) > 1 and fnt.getlength(s) > width:
        s = s[:-2].rstrip() + "…"
    return s
