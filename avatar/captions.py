"""Captions: timed words -> cues (SRT / WebVTT).

Rules (CaptionSpec): at most `max_chars` per line and `max_lines` lines per cue; a cue
never spans a silence between words longer than `max_gap`; a cue lasts at most
`max_duration` (unless one word alone is longer) and at least `min_duration` when the
next cue leaves room; cues never overlap.

Where to cut is chosen by dynamic programming over each stretch of speech: fewer cues,
cuts after sentence ends (. ? !) then clause marks (, ; :) or audible pauses, and
evenly filled cues. Lines inside a cue are balanced (the narrowest layout that fits).
Words carry no punctuation (Speech.words), so pass the narration text as `text` to get
punctuation back in the captions and in the cut choice; without it pauses guide cuts.
"""
from __future__ import annotations

from pathlib import Path

from avatar.script.models import CaptionSpec
from avatar.types import Cue, Word

_SENTENCE_END = (".", "?", "!", "…", ".\"", "?\"", "!\"", ".”", "?”", "!”", ".)", "?)", "!)")
_CLAUSE_END = (",", ";", ":", "—", "–")
# invisible characters that would reorder or hide caption text: zero-width spaces and joiners,
# the word joiner, the BOM, the soft hyphen, and every bidirectional control (embeddings,
# overrides, isolates, marks)
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u061c\u180e\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c"
                               "\u202d\u202e\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff"))


def visible(text: str) -> str:
    """`text` without zero-width and bidirectional control characters."""
    return text.translate(_INVISIBLE)


def _display(words: list[Word], text: str | None) -> list[str]:
    """Each word as written in `text` (with its punctuation), else its own text."""
    out = [w.text for w in words]
    if not text:
        return out
    from avatar.speech.piper_voice import strip_word

    tokens = text.split()
    j = 0
    for i, w in enumerate(words):
        for k in range(j, min(j + 8, len(tokens))):   # skip pure-punctuation tokens such as "—"
            if strip_word(tokens[k]).lower() == w.text.lower():
                out[i], j = tokens[k], k + 1
                break
    return out


def _break_cost(token: str, gap: float) -> float:
    """Cost of ending a cue after this token (0 = ideal)."""
    if token.endswith(_SENTENCE_END):
        return 0.0
    if token.endswith(_CLAUSE_END) or gap >= 0.3:
        return 0.6
    return 3.0


def _line_cost(lines: list[list[str]]) -> float:
    """Prefer line ends at punctuation; in a multi-line cue, dislike a sentence ending mid-line."""
    cost = 0.0
    for k, line in enumerate(lines):
        if len(lines) > 1:
            cost += sum(1.2 for t in line[:-1] if t.endswith(_SENTENCE_END))
        if k < len(lines) - 1:
            cost += 0.25 * _break_cost(line[-1], 0.0)
    return cost


def layout(tokens: list[str], max_chars: int, max_lines: int) -> tuple[tuple[str, ...], float] | None:
    """Fewest, balanced lines (each <= max_chars) holding the tokens, and their cost; None if impossible.

    Two lines: every cut is tried (balance + punctuation). Three: the narrowest greedy fill.
    """
    total = len(" ".join(tokens))
    if total <= max_chars:
        return (" ".join(tokens),), _line_cost([tokens])
    if max_lines < 2 or any(len(t) > max_chars for t in tokens):
        return None
    best = None
    for k in range(1, len(tokens)):
        a, b = " ".join(tokens[:k]), " ".join(tokens[k:])
        if len(a) <= max_chars and len(b) <= max_chars:
            cost = abs(len(a) - len(b)) / max_chars + _line_cost([tokens[:k], tokens[k:]])
            if best is None or cost < best[1]:
                best = ((a, b), cost)
    if best is not None or max_lines < 3:
        return best
    for width in range(-(-total // 3), max_chars + 1):   # narrowest width that fits 3 lines
        lines, cur = [], []
        for t in tokens:
            if cur and len(" ".join(cur)) + 1 + len(t) > width:
                lines.append(cur)
                cur = [t]
            else:
                cur.append(t)
        lines.append(cur)
        if len(lines) <= 3:
            return tuple(" ".join(x) for x in lines), _line_cost(lines)
    return None


def _wrap_long(token: str, max_chars: int, max_lines: int) -> tuple[str, ...]:
    """One token wider than a line (a URL, a long compound) is hyphen-wrapped; cut with … if still too long."""
    pieces = [token[k:k + max_chars - 1] for k in range(0, len(token), max_chars - 1)]
    lines = [p + "-" for p in pieces[:-1]] + [pieces[-1]]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][:max_chars - 1].rstrip("-") + "…"
    return tuple(lines)


def build_cues(words: list[Word], spec: CaptionSpec | None = None, text: str | None = None) -> list[Cue]:
    """Group timed words into caption cues following `spec` (see module docs)."""
    from dataclasses import replace

    spec = spec or CaptionSpec()
    words = [replace(w, text=visible(w.text)) for w in words]
    words = [w for w in words if w.text.strip()]
    if not words:
        return []
    shown = _display(words, visible(text) if text else text)
    # stretches of speech: a gap longer than max_gap always ends a cue
    runs, start = [], 0
    for i in range(1, len(words) + 1):
        if i == len(words) or words[i].start - words[i - 1].end > spec.max_gap:
            runs.append((start, i))
            start = i
    cues: list[Cue] = []
    for a, b in runs:
        cues += _segment(words, shown, a, b, spec)
    return _fix_times(cues, spec)


def _segment(words: list[Word], shown: list[str], a: int, b: int, spec: CaptionSpec) -> list[Cue]:
    """Optimal cuts of words[a:b] into cues (dynamic programming over cut positions)."""
    capacity = spec.max_chars * spec.max_lines
    best = {a: (0.0, a, ())}   # end index -> (cost, start of last cue, its lines)
    for j in range(a + 1, b + 1):
        gap = words[j].start - words[j - 1].end if j < b else 0.0
        end_cost = 0.0 if j == b else _break_cost(shown[j - 1], gap)
        choice = None
        for i in range(j - 1, a - 1, -1):
            chars = len(" ".join(shown[i:j]))
            too_long = words[j - 1].end - words[i].start > spec.max_duration
            if (chars > capacity or too_long) and j - i > 1:   # one word alone always gets a cue
                break
            laid = layout(shown[i:j], spec.max_chars, spec.max_lines)
            if laid is None:
                if j - i > 1:
                    continue
                laid = (_wrap_long(shown[i], spec.max_chars, spec.max_lines), 0.0)
            lines, line_cost = laid
            fill = 1.0 - min(1.0, chars / capacity)
            cost = best[i][0] + 1.0 + end_cost + line_cost + 0.5 * fill * fill
            if choice is None or cost < choice[0]:
                choice = (cost, i, lines)
        best[j] = choice
    cues, j = [], b
    while j > a:
        _, i, lines = best[j]
        cues.append(Cue(words[i].start, words[j - 1].end, tuple(lines), tuple(words[i:j])))
        j = i
    return cues[::-1]


def _fix_times(cues: list[Cue], spec: CaptionSpec) -> list[Cue]:
    """Stretch short cues towards min_duration, never into the next cue."""
    out = []
    for k, c in enumerate(cues):
        nxt = cues[k + 1].start if k + 1 < len(cues) else float("inf")
        end = max(c.end, min(c.start + spec.min_duration, nxt))
        out.append(Cue(c.start, end, c.lines, c.words))
    return out


def write_srt(path: str | Path, cues: list[Cue]) -> Path:
    """SubRip file (srt library), written atomically."""
    from datetime import timedelta

    import srt

    from avatar.files import write_text

    subs = [srt.Subtitle(i + 1, timedelta(seconds=c.start), timedelta(seconds=c.end), c.text)
            for i, c in enumerate(cues)]
    write_text(path, srt.compose(subs))
    return Path(path)


def _vtt_time(t: float) -> str:
    ms = int(round(t * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def write_vtt(path: str | Path, cues: list[Cue]) -> Path:
    """WebVTT file (webvtt-py), written atomically."""
    import webvtt

    from avatar.files import atomic_path

    vtt = webvtt.WebVTT()
    for c in cues:
        vtt.captions.append(webvtt.Caption(_vtt_time(c.start), _vtt_time(c.end), list(c.lines)))
    with atomic_path(path) as tmp:
        vtt.save(str(tmp))
    return Path(path)
