"""Markdown decks (Marp / Slidev style): slides with speaker notes as the narration.

    ---
    title: My talk               # optional YAML front matter: the same keys as a YAML
    voice: {speed: 1.1}          # template (voice, avatar, theme, captions, extends, ...)
    ---
    # Welcome                    <- `# ` title, `## ` subtitle
    <!-- Hello! This comment is what the presenter says. -->

    ---                          <- a line of three dashes starts the next slide
    # Plan
    - first point                <- `- `, `* ` or `1. ` items: bullets
    - second point
    <!-- reveal: true -->        <- a directive (see below)
    Notes: From `Note:`/`Notes:` to the end of the slide is narration too. [next] ...

What a slide becomes (the first that applies; a `layout:` directive overrides it):
fenced code -> `code` (language from the fence); `> quote` (a last line `> — Author`
names the author) -> `quote`; two lists or paragraphs separated by a line
`<!-- column -->` -> `two_columns`; `![alt](path)` alone -> `image`, with text or
bullets -> `image_text`; bullets or paragraphs -> `bullets` (paragraphs go to `text`);
only headings -> `title`; nothing -> `blank`.

Narration: every HTML comment `<!-- ... -->` (except `<!-- column -->` and directives)
and a `Note:`/`Notes:` block that runs to the end of the slide, in order.

Directives: a comment that starts with one of these keys is YAML for this scene, not
narration: `layout` (a slide layout such as `quote`, or where the presenter sits:
`pip`, `side`, `full`, `none`), `reveal`, `fit`, `background` (slide fields), `slide`,
`voice`, `avatar` (partial overrides), `pause_before`, `pause_after`, `transition`,
`duration`. Example: `<!-- layout: side -->`, `<!-- voice: {speed: 0.9} -->`.
"""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

from avatar.errors import AvatarError
from avatar.script.build import SLIDE_LAYOUTS, Locs, build, file_title, normalize, read_text
from avatar.script.models import Presentation
from avatar.script.yaml_loader import apply_extends, parse_yaml

_COMMENT = re.compile(r"<!--(.*?)-->", re.S)
_COLUMN = re.compile(r"<!--\s*column\s*-->", re.I)
_NOTES = re.compile(r"^(?:Notes?|Speaker notes?):(.*)$")
_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_SEPARATOR = re.compile(r"^---\s*$")
_DIRECTIVE = re.compile(r"^\s*([A-Za-z_]+)\s*:")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
SLIDE_SHORTHANDS = ("reveal", "fit", "background")
DIRECTIVES = ("layout", "slide", "voice", "avatar", "pause_before", "pause_after", "transition",
              "duration") + SLIDE_SHORTHANDS


def load_markdown(path: str | Path) -> Presentation:
    """Load a Markdown deck into a validated Presentation."""
    path = Path(path)
    name = str(path)
    folder = path.parent.resolve()
    text = read_text(path)
    texts = {name: text}
    lines = text.splitlines()

    data: dict = {}
    locs: Locs = {}
    body = 0
    if lines and lines[0].strip() == "---":
        end = next((j for j in range(1, len(lines)) if lines[j].strip() in ("---", "...")), None)
        if end is None:
            raise AvatarError("the front matter is not closed", path=name, line=1,
                              hint="add a line '---' after the settings")
        front, front_locs = parse_yaml("\n".join(lines[1:end]), name, line_offset=1)
        if front is not None:
            if not isinstance(front, dict):
                raise AvatarError("the front matter must be a mapping of settings (title:, voice:, ...)",
                                  path=name, line=2)
            if "scenes" in front:
                raise AvatarError("scenes come from the slides, not the front matter", path=name,
                                  line=front_locs[("scenes",)][1], field="scenes", hint="remove it")
            data, locs = front, front_locs
            normalize(data, locs, folder, (name, 1))
            data, locs = apply_extends(data, locs, path, texts)
        body = end + 1

    scenes: list[dict] = []
    scene_locs: Locs = {}
    for start, chunk in _split(lines, body):
        scene = _scene(chunk, start, name, len(scenes), scene_locs)
        if scene is not None:
            scenes.append(scene)
    if not scenes:
        raise AvatarError("no slides", path=name, line=min(body + 1, max(len(lines), 1)),
                          hint="write slides separated by lines of '---'")
    locs = {p: l for p, l in locs.items() if p[:1] != ("scenes",)}
    locs.update(scene_locs)
    deck = {"scenes": scenes}
    normalize(deck, locs, folder, (name, 1))
    data["scenes"] = deck["scenes"]
    if "title" not in data:
        first = scenes[0].get("slide", {}).get("title")
        data["title"] = first or file_title(path)
    return build(data, locs, path.resolve(), (name, 1), texts)


def _outside_code(lines: list[str]):
    """For each line: True when it is Markdown text, False for a code fence line or a line
    inside a fenced block (closed by a fence of the same character, at least as long)."""
    fence = None
    for line in lines:
        m = _FENCE.match(line)
        if fence is None:
            if m:
                fence = m.group(1)
            yield fence is None
            continue
        if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) \
                and not line.strip()[len(m.group(1)):].strip():
            fence = None
        yield False


def _split(lines: list[str], start: int):
    """(first line index, lines) of each slide: split at `---` lines outside code fences."""
    chunk_start, chunk = start, []
    for n, plain in enumerate(_outside_code(lines[start:]), start):
        if plain and _SEPARATOR.match(lines[n]):
            yield chunk_start, chunk
            chunk_start, chunk = n + 1, []
        else:
            chunk.append(lines[n])
    yield chunk_start, chunk


def _scene(chunk: list[str], start: int, name: str, index: int, locs: Locs) -> dict | None:
    """One slide's lines -> a scene dict (None for a slide with nothing in it)."""
    from markdown_it import MarkdownIt

    if not any(line.strip() for line in chunk):
        return None
    at = ("scenes", index)
    first = start + next(k for k, line in enumerate(chunk) if line.strip()) + 1
    locs[at] = locs[at + ("slide",)] = (name, first)

    notes: list[tuple[int, str]] = []          # (line, text) in order
    notes_at = _notes_start(chunk)
    content = chunk if notes_at is None else chunk[:notes_at]

    slide: dict = {}
    scene: dict = {}
    columns: list[list[str]] = [[], []]         # bullets + paragraphs, per column
    bullets: list[str] = []
    paragraphs: list[str] = []
    bullets_line = None
    image = None
    column = 0

    def put(key: str, value, line: int) -> None:
        if key not in slide:
            slide[key] = value
            locs[at + ("slide", key)] = (name, line)

    tokens = MarkdownIt("commonmark").parse("\n".join(content))
    i = 0
    while i < len(tokens):
        t = tokens[i]
        j = _close(tokens, i)
        line = start + t.map[0] + 1 if t.map else first
        if t.type == "heading_open":
            text = _inline(tokens[i + 1], notes, line)
            if t.tag == "h1" and "title" not in slide:
                put("title", text, line)
            elif "subtitle" not in slide:
                put("subtitle", text, line)
            elif text:
                paragraphs.append(text)
                columns[column].append(text)
        elif t.type == "paragraph_open":
            inline = tokens[i + 1]
            for child in inline.children or []:
                if child.type == "image" and image is None:
                    src = unquote(str(child.attrs.get("src", "")))
                    if _URL.match(src):
                        raise AvatarError(f"remote image {src!r} is not supported", path=name, line=line,
                                          field=f"scenes[{index}].slide.image",
                                          hint="download it and use a local path")
                    image = (src, line)
            text = _inline(inline, notes, line)
            if text:
                paragraphs.append(text)
                columns[column].append(text)
        elif t.type in ("bullet_list_open", "ordered_list_open"):
            items = [_inline(x, notes, line) for x in tokens[i:j] if x.type == "inline"]
            items = [x for x in items if x]
            bullets += items
            columns[column] += items
            bullets_line = bullets_line or line
        elif t.type == "blockquote_open":
            quote, author = _quote(content[t.map[0]:t.map[1]])
            put("quote", quote, line)
            if author:
                put("author", author, line)
        elif t.type in ("fence", "code_block"):
            put("code", t.content.rstrip("\n"), line)
            if t.info.strip():
                put("language", t.info.split()[0], line)
        elif t.type == "html_block":
            for m in _COMMENT.finditer(t.content):
                cline = line + t.content[:m.start()].count("\n")
                if _COLUMN.fullmatch(m.group(0)):
                    column = 1
                    locs[at + ("slide", "right")] = (name, cline)
                else:
                    _comment(m.group(1), cline, name, at, scene, slide, locs, notes)
        i = j + 1

    if notes_at is not None:
        block = [_NOTES.match(chunk[notes_at]).group(1)] + chunk[notes_at + 1:]
        text = "\n".join(block).strip()
        if text:
            notes.append((start + notes_at + 1, text))

    if image is not None:
        put("image", image[0], image[1])
    if column == 1:
        auto = "two_columns"
        put("left", columns[0], first)
        put("right", columns[1], locs[at + ("slide", "right")][1])
    else:
        if bullets:
            put("bullets", bullets, bullets_line or first)
        if paragraphs:
            put("text", "\n\n".join(paragraphs), first)
        if "code" in slide:
            auto = "code"
        elif "quote" in slide:
            auto = "quote"
        elif image is not None:
            auto = "image_text" if bullets or paragraphs else "image"
        elif bullets or paragraphs:
            auto = "bullets"
        elif "title" in slide or "subtitle" in slide:
            auto = "title"
        else:
            auto = "blank"
    slide.setdefault("layout", auto)
    scene["slide"] = slide
    if notes:
        scene["narration"] = "\n\n".join(text for _, text in notes)
        locs[at + ("narration",)] = (name, notes[0][0])
    return scene


def _notes_start(chunk: list[str]) -> int | None:
    """Index of the `Note:`/`Notes:` line outside code fences, if any."""
    return next((k for k, plain in enumerate(_outside_code(chunk)) if plain and _NOTES.match(chunk[k])), None)


def _close(tokens, i: int) -> int:
    """Index of the token closing tokens[i] (i itself for a token that opens nothing)."""
    t = tokens[i]
    if not t.type.endswith("_open"):
        return i
    closing = t.type[:-5] + "_close"
    for j in range(i + 1, len(tokens)):
        if tokens[j].type == closing and tokens[j].level == t.level:
            return j
    return len(tokens) - 1


def _inline(token, notes: list[tuple[int, str]], line: int) -> str:
    """The plain text of an inline token (emphasis markers dropped); inline comments are notes."""
    parts = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "html_inline" and child.content.startswith("<!--"):
            body = _COMMENT.fullmatch(child.content)
            if body and body.group(1).strip():
                notes.append((line, body.group(1).strip()))
    return " ".join("".join(parts).split())


def _quote(lines: list[str]) -> tuple[str, str | None]:
    body = [re.sub(r"^\s{0,3}>\s?", "", line).strip() for line in lines]
    body = [line for line in body if line]
    author = None
    if len(body) > 1:
        m = re.match(r"^(?:—|–|--|-)\s*(.+)$", body[-1])
        if m:
            author = m.group(1).strip()
            body = body[:-1]
    return " ".join(" ".join(body).split()), author


def _comment(body: str, line: int, name: str, at: tuple, scene: dict, slide: dict, locs: Locs,
             notes: list[tuple[int, str]]) -> None:
    """A comment is either a directive (YAML for this scene) or speaker notes."""
    m = _DIRECTIVE.match(body)
    if not (m and m.group(1) in DIRECTIVES):
        if body.strip():
            first_text = line + body[:len(body) - len(body.lstrip())].count("\n")
            notes.append((first_text, body.strip()))
        return
    values, vlocs = parse_yaml(body, name, line_offset=line - 1)
    if not isinstance(values, dict):
        raise AvatarError("a directive must be 'key: value'", path=name, line=line,
                          hint="e.g. <!-- layout: side -->")
    for key, value in values.items():
        loc = vlocs.get((key,), (name, line))
        if key in SLIDE_SHORTHANDS or (key == "layout" and value in SLIDE_LAYOUTS):
            slide[key] = value
            locs[at + ("slide", key)] = loc
        elif key == "slide" and isinstance(value, dict):
            slide.update(value)
            for p, l in vlocs.items():
                if p[:1] == ("slide",):
                    locs[at + p] = l
        else:
            scene[key] = value
            for p, l in vlocs.items():
                if p[:1] == (key,):
                    locs[at + p] = l
