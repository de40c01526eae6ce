"""PowerPoint / LibreOffice decks (.pptx, .odp, .ppt) as presentations.

    from avatar.script.deck import load_deck, convert_deck
    deck = load_deck("talk.pptx")                     # -> Presentation, one scene per visible slide
    convert_deck("talk.pptx", "talk.yaml")            # -> talk.yaml + talk.slides.pdf, editable

LibreOffice (headless) renders the slides to one PDF, so a slide looks as it does in
the deck; each scene is a `pdf` slide on one page of it. The speaker notes are the
narration (python-pptx reads them; .odp and .ppt decks are first saved as .pptx by
LibreOffice). Hidden slides are skipped. A slide with entrance/exit animations gets one
page per build step (`pages:` + `reveal: true`), shown at the notes' `[next]` markers, or
spread over the narration without markers. A PowerPoint transition into a slide becomes
a crossfade, no transition a cut.

Per-slide options in the notes: tags `[key: value]`, anywhere in the notes (usually on
the first line), taken out of the narration:

    [layout: side]            where the presenter sits: pip | side | full | none
    [avatar: none]            the same; or a mapping: [avatar: {position: top-left, size: 0.4}]
    [voice: joe-slow]         a voice preset, or a mapping: [voice: {speed: 0.9}]
    [transition: cut]         cut | crossfade into this slide
    [duration: 6]             minimum seconds (a slide with no narration)
    [pause_before: 1] [pause_after: 2]

`[pause 0.5s]` and `[next]` work as in any narration. The conversion runs once per deck
content (cached under the cache root's decks/DIGEST/), before any scene renders.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from avatar.build.plan import file_digest
from avatar.errors import AvatarError

from avatar.script import DECK_SUFFIXES

if TYPE_CHECKING:
    from avatar.script.models import Presentation

FORMAT = 1                     # bump when what the cache holds changes
NO_NOTES_SECONDS = 3.0         # a slide without narration is shown this long
NOTE_OPTIONS = ("layout", "avatar", "voice", "transition", "duration", "pause_before", "pause_after")
_OPTION = re.compile(r"[ \t]*\[\s*([A-Za-z_][\w-]*)\s*:\s*([^\[\]]*?)\s*\][ \t]*\n?")


@dataclass(frozen=True)
class Converted:
    """A deck as the cache holds it: the PDF of every page and, per visible slide, its facts."""
    pdf: Path
    title: str
    fonts: tuple[str, ...]
    slides: tuple[dict, ...]      # number, title, notes, notes_not_text, transition, pages (1-based, per step)


# --------------------------------------------------------------------------- load
def load_deck(path: str | Path, *, read_titles: bool = False) -> Presentation:
    """A validated Presentation from a deck: one scene per visible slide."""
    from avatar.script.build import build

    path = Path(path).expanduser()
    data, locs = deck_tree(path, read_titles=read_titles)
    return build(data, locs, path.resolve(), (str(path), None), {})


def deck_tree(path: Path, *, read_titles: bool = False) -> tuple[dict, dict]:
    """(data, locs) for avatar.script.build: what a YAML file with the deck's scenes would hold
    (also what a YAML `extends: deck.pptx` merges under itself)."""
    from avatar.script.build import file_title

    shown = str(path)
    conv = converted(path)
    _warn_fonts(shown, conv.fonts)
    scenes, silent = [], []
    for s in conv.slides:
        scene = _scene(s, conv.pdf, shown, read_titles)
        if not _spoken(scene.get("narration", "")) and "duration" not in scene:
            scene["duration"] = NO_NOTES_SECONDS
            silent.append(s["number"])
        scenes.append(scene)
    if silent:
        which = ", ".join(map(str, silent))
        warnings.warn(f"{shown}: slide{'s' if len(silent) > 1 else ''} {which} "
                      f"{'have' if len(silent) > 1 else 'has'} no speaker notes: shown for "
                      f"{NO_NOTES_SECONDS:g} s without narration (write notes, or `avatar convert --read-titles` "
                      "to read the titles)", stacklevel=2)
    kinds = [s["transition"] for s in conv.slides[1:]]
    common = max(("cut", "crossfade"), key=kinds.count) if kinds else "crossfade"
    for scene, s in zip(scenes[1:], conv.slides[1:]):
        if s["transition"] != common:
            scene.setdefault("transition", s["transition"])
    data = {"title": conv.title or conv.slides[0]["title"] or file_title(path), "transition": common,
            "scenes": scenes}
    return data, {}


def _spoken(narration: str) -> bool:
    from avatar.speech.markup import plain_text

    return bool(plain_text(narration))


def _scene(s: dict, pdf: Path, shown: str, read_titles: bool) -> dict:
    """One slide's scene dict: its page(s), narration and the options from its notes."""
    from pydantic import ValidationError

    from avatar.script.models import Scene
    from avatar.speech import markup

    label = f"slide {s['number']} notes"
    if s["notes_not_text"]:
        raise AvatarError("the speaker notes hold no text (a picture or a table?)", path=shown, field=label,
                          hint="write the narration as text in the notes")
    options, narration = split_options(s["notes"], shown, label)
    try:
        segments = markup.parse(narration)
    except markup.MarkupError as e:
        raise AvatarError(str(e), path=shown, field=label) from None
    steps = len(s["pages"]) - 1
    n_next = sum(isinstance(x, markup.Marker) and x.name == "next" for x in segments)
    if n_next > steps:
        raise AvatarError(f"{n_next} [next] marker{'s' if n_next > 1 else ''} but the slide has "
                          f"{steps} build step{'s' if steps != 1 else ''}", path=shown, field=label,
                          hint="one [next] per click of the slide's animations")
    if read_titles and not _spoken(narration) and s["title"]:
        title = s["title"] if s["title"][-1] in ".!?" else f"{s['title']}."
        narration = f"{title} {narration}".strip()
    slide: dict = {"layout": "pdf", "pdf": str(pdf)}
    if steps:
        slide.update(pages=list(s["pages"]), reveal=True)
    else:
        slide["page"] = s["pages"][0]
    scene = {"slide": slide, **options}
    if narration.strip():
        scene["narration"] = narration.strip()
    try:
        Scene.model_validate(scene)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        what = ".".join(map(str, err["loc"]))
        raise AvatarError(f"{what}: {err['msg'].removeprefix('Value error, ')}", path=shown, field=label) from None
    return scene


def split_options(notes: str, shown: str, label: str) -> tuple[dict, str]:
    """(scene options, the narration without them) from a slide's notes."""
    from avatar.script.build import AVATAR_LAYOUTS, SLIDE_LAYOUTS, did_you_mean

    opts: dict = {}

    def take(m: re.Match) -> str:
        key, raw = m.group(1).lower().replace("-", "_"), m.group(2)
        tag = f"[{m.group(1)}: {raw}]"
        if key not in NOTE_OPTIONS:
            hint = ("a pause is written [pause 0.5s]" if key in ("pause", "next")
                    else did_you_mean(key, NOTE_OPTIONS) or f"options: {', '.join(NOTE_OPTIONS)}")
            raise AvatarError(f"unknown option {tag}", path=shown, field=label, hint=hint)
        value = _yaml_value(raw, tag, shown, label)
        if key in ("layout", "avatar") and isinstance(value, str):
            if value not in AVATAR_LAYOUTS:
                hint = (f"a deck slide is its page; {key} says where the presenter sits: {', '.join(AVATAR_LAYOUTS)}"
                        if value in SLIDE_LAYOUTS else did_you_mean(value, AVATAR_LAYOUTS)
                        or f"use one of: {', '.join(AVATAR_LAYOUTS)}")
                raise AvatarError(f"unknown value in {tag}", path=shown, field=label, hint=hint)
            key, value = "avatar", {"layout": value}
        elif key == "layout":
            raise AvatarError(f"{tag}: give a name", path=shown, field=label, hint=", ".join(AVATAR_LAYOUTS))
        if key == "voice" and isinstance(value, str):
            value = {"preset": value}
        if key == "voice" and isinstance(value, dict) and isinstance(value.get("preset"), str):
            _check_preset(value["preset"], tag, shown, label)
        if key in ("avatar", "voice") and not isinstance(value, dict):
            raise AvatarError(f"{tag}: give a name or a mapping", path=shown, field=label,
                              hint="e.g. [voice: joe-slow] or [voice: {speed: 0.9}]")
        if isinstance(opts.get(key), dict):
            value = {**opts[key], **value}
        opts[key] = value
        return ""

    narration = _OPTION.sub(take, notes)
    return opts, narration


def _yaml_value(raw: str, tag: str, shown: str, label: str):
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        return YAML(typ="safe").load(raw) if raw.strip() else None
    except YAMLError:
        raise AvatarError(f"cannot read the value of {tag}", path=shown, field=label,
                          hint="e.g. [voice: {speed: 0.9}]") from None


def _check_preset(name: str, tag: str, shown: str, label: str) -> None:
    from avatar.speech.presets import preset_path

    try:
        preset_path(name)
    except AvatarError as e:
        raise AvatarError(f"{tag}: {e}", path=shown, field=label) from None


def _warn_fonts(shown: str, fonts: tuple[str, ...]) -> None:
    """One warning naming the deck's fonts that fontconfig does not know (LibreOffice substitutes them)."""
    import subprocess

    if not fonts or not shutil.which("fc-list"):
        return
    try:
        listed = subprocess.run(["fc-list", ":", "family"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return
    have = {name.strip().lower() for line in listed.splitlines() for name in line.split(",")}
    missing = [f for f in fonts if f.lower() not in have]
    if missing:
        warnings.warn(f"{shown}: font{'s' if len(missing) > 1 else ''} not installed, LibreOffice draws "
                      f"{'them' if len(missing) > 1 else 'it'} with a substitute: {', '.join(missing)} "
                      "(install the fonts for a faithful slide; fonts-crosextra-carlito and fonts-liberation "
                      "match Calibri and Arial/Times New Roman)", stacklevel=3)


# --------------------------------------------------------------------------- conversion + cache
def _digest(path: Path, shown: str) -> str:
    h = hashlib.sha256(f"avatar-deck-{FORMAT}:{path.suffix.lower()}:".encode())
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except FileNotFoundError:
        raise AvatarError("deck file not found", path=shown, hint="check the path") from None
    except IsADirectoryError:
        raise AvatarError("is a folder, not a deck file", path=shown) from None
    except OSError as e:
        raise AvatarError(f"cannot read the deck: {e.strerror or e}", path=shown) from None
    return h.hexdigest()[:32]


def converted(path: str | Path) -> Converted:
    """The deck's conversion: from the cache when a verified one is there, else one LibreOffice
    run (two for .odp/.ppt), published to the cache atomically."""
    from avatar.build.cache import cache_root

    path = Path(path).expanduser()
    shown = str(path)
    root = cache_root() / "decks"
    final = root / _digest(path, shown)
    hit = _read_cache(final)
    if hit is not None:
        return hit
    try:
        root.mkdir(parents=True, exist_ok=True)
        _drop_stale(root)
        work = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    except OSError as e:
        raise AvatarError(f"cannot write the deck cache {root}: {e.strerror or e}",
                          hint="set AVATAR_CACHE to a writable folder") from None
    try:
        _convert(path, shown, work)
        try:
            os.rename(work, final)
        except OSError:                         # there already: another run's (good) or a damaged one
            if _read_cache(final) is None:
                shutil.rmtree(final, ignore_errors=True)
                os.rename(work, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    hit = _read_cache(final)
    if hit is None:
        raise AvatarError(f"the converted deck in {final} does not verify", hint="is the disk full?")
    return hit


def _drop_stale(root: Path, age: float = 24 * 3600) -> None:
    """Work folders left by conversions that were killed (a day old: no conversion runs that long)."""
    import time

    for p in root.glob(".tmp-*"):
        try:
            if time.time() - p.stat().st_mtime > age:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


def _read_cache(folder: Path) -> Converted | None:
    """The cached conversion if it is complete and its PDF is the one it recorded, else None."""
    try:
        info = json.loads((folder / "deck.json").read_text(encoding="utf-8"))
        pdf = folder / "deck.pdf"
        if (info.get("format") != FORMAT or pdf.stat().st_size != info["pdf_bytes"]
                or file_digest(pdf) != info["pdf_sha256"]):
            return None
        return Converted(pdf, info["title"], tuple(info["fonts"]), tuple(info["slides"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _convert(path: Path, shown: str, work: Path) -> None:
    """deck -> work/deck.pdf (every build step of every visible slide) + work/deck.json."""
    scratch = work / "scratch"                 # variants and LibreOffice's outputs: gone before publishing
    scratch.mkdir()
    try:
        _convert_in(path, shown, work, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _convert_in(path: Path, shown: str, work: Path, scratch: Path) -> None:
    import pypdfium2 as pdfium

    from avatar.script.deck import office
    from avatar.script.deck.pptx import fonts_named, open_pptx, read_slides, write_variant

    suffix = path.suffix.lower()
    src = path
    if suffix != ".pptx":                       # .odp / .ppt: LibreOffice saves it as .pptx first
        office.find_soffice()
        copy = scratch / f"source{suffix}"
        shutil.copyfile(path, copy)
        src = office.convert([copy], "pptx", scratch / "pptx", timeout=120, what=shown)[0]
    prs = open_pptx(src, shown)
    slides = read_slides(prs)
    if not slides:
        raise AvatarError("the deck has no slides", path=shown, hint="add a slide")
    visible = [s for s in slides if not s.hidden]
    if not visible:
        raise AvatarError(f"all {len(slides)} slides are hidden: nothing to present", path=shown,
                          hint="unhide the slides to present (Slide Show > Hide Slide)")
    facts, page = [], 1                         # page numbers are known before converting: slide by slide
    for s in visible:
        facts.append({"number": s.number, "title": s.title, "notes": s.notes, "notes_not_text": s.notes_not_text,
                      "transition": s.transition, "pages": [page + s.distinct.index(st) for st in s.states]})
        page += len(s.distinct)
    for f in facts:                             # mistakes in the notes cost no LibreOffice run
        _scene(f, work / "deck.pdf", shown, read_titles=False)
    office.find_soffice()
    depth = max(len(s.distinct) for s in visible)
    variants = []
    for v in range(depth):                      # variant v: the v-th build state of every slide that has one
        dest = scratch / f"v{v}.pptx"
        write_variant(src, dest, {s.number: s.distinct[v] for s in visible if len(s.distinct) > v})
        variants.append(dest)
    pdfs = office.convert(variants, "pdf", scratch / "pdf", timeout=120 + 5 * (page - 1), what=shown)
    docs = [pdfium.PdfDocument(str(p)) for p in pdfs]
    try:
        for v, doc in enumerate(docs):
            want = sum(len(s.distinct) > v for s in visible)
            if len(doc) != want:
                raise AvatarError(f"LibreOffice exported {len(doc)} pages where {want} slides were expected",
                                  path=shown, hint="open the deck in LibreOffice Impress and save it again")
        out = pdfium.PdfDocument.new()
        taken = [0] * depth                     # pages of each variant used so far
        for s in visible:                       # the pages of one slide's build steps follow each other
            for v in range(len(s.distinct)):
                out.import_pages(docs[v], [taken[v]])
                taken[v] += 1
        out.save(str(work / "deck.pdf"))
        out.close()
    finally:
        for d in docs:
            d.close()
    pdf = work / "deck.pdf"
    info = {"format": FORMAT, "source": path.name, "title": (prs.core_properties.title or "").strip(),
            "fonts": fonts_named(prs, slides), "slides": facts,
            "pdf_bytes": pdf.stat().st_size, "pdf_sha256": file_digest(pdf)}
    (work / "deck.json").write_text(json.dumps(info, indent=1), encoding="utf-8")


# --------------------------------------------------------------------------- convert to YAML
def convert_deck(path: str | Path, out: str | Path, *, read_titles: bool = False,
                 force: bool = False) -> tuple[Path, Path]:
    """Write OUT.yaml (one scene per slide, editable) and OUT.slides.pdf beside it; returns both paths."""
    from avatar import __version__
    from avatar.files import atomic_path

    path, out = Path(path).expanduser(), Path(out).expanduser()
    if out.suffix.lower() not in (".yaml", ".yml"):
        raise AvatarError(f"{out}: the output of convert is a .yaml file (e.g. -o talk.yaml)")
    if not out.parent.is_dir():
        raise AvatarError(f"{out}: folder {out.parent} does not exist")
    pdf_out = out.with_name(f"{out.stem}.slides.pdf")
    for p in (out, pdf_out):
        if p.exists() and not force:
            raise AvatarError(f"{p} exists", hint="use --force to overwrite it (edits in it are lost)")
    conv = converted(path)
    data, _ = deck_tree(path, read_titles=read_titles)
    for scene in data["scenes"]:
        scene["slide"]["pdf"] = pdf_out.name
    numbers = [s["number"] for s in conv.slides]
    text = _yaml_text(data, numbers, conv.slides, header=(
        f"{out.name}: converted from {path.name} by `avatar convert` (avatar-presenter {__version__}).\n"
        f"The slides are LibreOffice's rendering of the deck, in {pdf_out.name}: one page per slide, and\n"
        "one page per build step for a slide with animations (`pages:`, shown one by one at each [next]).\n"
        "Edit the narration ([pause 0.5s], [next]) and per-scene settings (layout: side, voice: joe-slow),\n"
        f"then: avatar render {out.name} -o {out.stem}.mp4"))
    with atomic_path(out) as tmp_yaml:         # the YAML appears last, when its PDF is in place
        tmp_yaml.write_text(text, encoding="utf-8")
        with atomic_path(pdf_out) as tmp_pdf:
            shutil.copyfile(conv.pdf, tmp_pdf)
    return out, pdf_out


def _yaml_text(data: dict, numbers: list[int], slides, header: str) -> str:
    import io

    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.scalarstring import LiteralScalarString

    def flow(d: dict) -> CommentedMap:
        m = CommentedMap(d)
        m.fa.set_flow_style()
        return m

    seq = CommentedSeq()
    for i, (scene, number, facts) in enumerate(zip(data["scenes"], numbers, slides)):
        m = CommentedMap()
        avatar = scene.get("avatar")
        if isinstance(avatar, dict) and set(avatar) == {"layout"}:
            m["layout"] = avatar["layout"]               # the scene shorthand
        elif avatar:
            m["avatar"] = flow(avatar)
        m["slide"] = flow(scene["slide"])
        narration = scene.get("narration", "")
        m["narration"] = LiteralScalarString(narration) if "\n" in narration else narration
        for key in ("voice", "transition", "duration", "pause_before", "pause_after"):
            if key in scene:
                value = scene[key]
                m[key] = flow(value) if isinstance(value, dict) else value
        seq.append(m)
        title = f": {facts['title']}" if facts["title"] else ""
        seq.yaml_set_comment_before_after_key(i, before=f"slide {number}{title}", indent=2)
    top = CommentedMap()
    top["title"] = data["title"]
    top["transition"] = data["transition"]
    top["scenes"] = seq
    top.yaml_set_start_comment(header)
    y = YAML()
    y.width = 100
    y.indent(mapping=2, sequence=4, offset=2)
    buf = io.StringIO()
    y.dump(top, buf)
    return buf.getvalue()


__all__ = ["load_deck", "convert_deck", "deck_tree", "converted", "split_options", "DECK_SUFFIXES"]
