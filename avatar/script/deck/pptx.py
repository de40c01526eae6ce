"""What python-pptx reads from a .pptx: per slide its notes, title, hidden flag, transition
and build steps (entrance/exit animations in p:timing), and the variant decks whose PDF
pages are the build steps.

Build steps: the main animation sequence of a slide is a list of click groups; an
entrance effect hides its shape (or its paragraphs, for a by-paragraph build) until its
click, an exit effect hides it from its click on. Effects that start without a click
(with/after previous at the start) count as shown from the beginning. State k (0..clicks)
is the set of hidden shapes/paragraphs after k clicks; identical states share a page.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from avatar.errors import AvatarError

NS = {
    "p": "http://schemas.openxmlformats.org/presentationml/2006/main",
    "a": "http://schemas.openxmlformats.org/drawingml/2006/main",
    "mc": "http://schemas.openxmlformats.org/markup-compatibility/2006",
}
_A = "{%s}" % NS["a"]
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"   # compound file: an encrypted .pptx, or a .ppt

Key = tuple[str, "int | None"]      # (shape id, paragraph index or None for the whole shape)


@dataclass
class SlideInfo:
    number: int                      # 1-based position in the deck (hidden slides count)
    title: str = ""
    notes: str = ""
    notes_not_text: bool = False     # the notes page holds something (a picture, a table) but no text
    hidden: bool = False
    transition: str = "cut"          # cut | crossfade (any PowerPoint transition but "none"/cut)
    states: list[frozenset] = field(default_factory=lambda: [frozenset()])   # hidden keys after k clicks

    @property
    def distinct(self) -> list[frozenset]:
        """The states that need a page of their own, in order of appearance."""
        out: list[frozenset] = []
        for s in self.states:
            if s not in out:
                out.append(s)
        return out


def open_pptx(path: Path, shown: str):
    """python-pptx Presentation, or a one-line error for an encrypted, damaged or non-PowerPoint file."""
    from pptx import Presentation
    from pptx.exc import PackageNotFoundError

    with open(path, "rb") as f:
        head = f.read(8)
    if head == _OLE_MAGIC:
        raise AvatarError("the deck is password-protected (encrypted)", path=shown,
                          hint="remove the password in PowerPoint (File > Info > Protect Presentation) and save again")
    try:
        return Presentation(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as e:
        raise AvatarError(f"not a readable PowerPoint deck ({type(e).__name__}: {e})", path=shown,
                          hint="is the file damaged? open it in PowerPoint or LibreOffice Impress and save it again") \
            from None
    except Exception as e:   # lxml XMLSyntaxError and friends: a damaged part inside the zip
        raise AvatarError(f"the deck is damaged ({type(e).__name__}: {e})", path=shown,
                          hint="open it in PowerPoint or LibreOffice Impress and save it again") from None


def read_slides(prs) -> list[SlideInfo]:
    """Every slide of the deck, in order, hidden ones included (flagged)."""
    out = []
    for n, slide in enumerate(prs.slides, 1):
        sld = slide._element
        info = SlideInfo(number=n, hidden=sld.get("show") in ("0", "false"))
        title = slide.shapes.title
        if title is not None and title.has_text_frame:
            info.title = " ".join(title.text_frame.text.split())
        if slide.has_notes_slide:
            info.notes, info.notes_not_text = _notes(slide.notes_slide)
        info.transition = _transition(sld)
        info.states = build_states(sld)
        out.append(info)
    return out


def _notes(notes_slide) -> tuple[str, bool]:
    frame = notes_slide.notes_text_frame
    text = ""
    if frame is not None:
        text = "\n".join(p.text.replace("\v", " ") for p in frame.paragraphs).strip()
    other = [s for s in notes_slide.shapes
             if not s.is_placeholder and s.shape_type is not None and not s.has_text_frame]
    return text, (not text and bool(other))


def _transition(sld) -> str:
    found = sld.find("p:transition", NS)
    if found is None:
        found = sld.find("mc:AlternateContent/mc:Choice/p:transition", NS)
    if found is None:
        return "cut"
    kinds = [_local(c) for c in found]
    return "crossfade" if kinds and kinds[0] != "cut" else "cut"


def _local(el) -> str:
    tag = el.tag if isinstance(el.tag, str) else ""
    return tag.rsplit("}", 1)[-1]


def build_states(sld) -> list[frozenset]:
    """Hidden (shape id, paragraph) keys after 0, 1, ... clicks of the slide's main sequence."""
    main = sld.find("p:timing//p:cTn[@nodeType='mainSeq']", NS)
    if main is None:
        return [frozenset()]
    appear: dict[Key, int] = {}
    vanish: dict[Key, int] = {}
    clicks = 0
    for group in main.findall("p:childTnLst/p:par", NS):
        effects = group.findall(".//p:cTn[@presetClass]", NS)
        if not effects:
            continue
        if effects[0].get("nodeType", "clickEffect") == "clickEffect":
            clicks += 1
        for eff in effects:
            kind = eff.get("presetClass")
            tgt = eff.find(".//p:spTgt", NS)
            if kind not in ("entr", "exit") or tgt is None or not tgt.get("spid"):
                continue
            spid = tgt.get("spid")
            keys: list[Key] = [(spid, i) for r in tgt.findall("p:txEl/p:pRg", NS)
                               for i in range(int(r.get("st", 0)), int(r.get("end", r.get("st", 0))) + 1)]
            for key in keys or [(spid, None)]:
                (appear if kind == "entr" else vanish).setdefault(key, clicks)
    return [frozenset({k for k, s in appear.items() if step < s} | {k for k, s in vanish.items() if step >= s})
            for step in range(clicks + 1)]


# --------------------------------------------------------------------------- variants
def write_variant(src: Path, dest: Path, shown: dict[int, frozenset]) -> None:
    """A copy of the deck where slide n (1-based) shows state shown[n]; every other slide is hidden
    (LibreOffice's PDF export skips hidden slides, and slide numbers stay as in the deck).
    Animations are dropped: the export is a still picture of each slide."""
    from pptx import Presentation

    prs = Presentation(str(src))
    for n, slide in enumerate(prs.slides, 1):
        sld = slide._element
        for timing in sld.findall("p:timing", NS):
            sld.remove(timing)
        if n in shown:
            sld.attrib.pop("show", None)
            _hide(sld, shown[n])
        else:
            sld.set("show", "0")
    prs.save(str(dest))


def _hide(sld, hidden: frozenset) -> None:
    shapes = {}
    for c in sld.iterfind(".//p:cSld/p:spTree//p:cNvPr", NS):
        shape = c.getparent().getparent()                             # p:cNvPr < p:nvXxPr < the shape
        if _local(shape) != "spTree":                                 # (the tree's own id is no shape)
            shapes.setdefault(c.get("id"), shape)
    whole = set()
    for spid, para in hidden:
        shape = shapes.get(spid)
        if shape is None:
            continue
        if para is None:
            whole.add(spid)
            continue
        body = shape.find("p:txBody", NS)
        paras = body.findall("a:p", NS) if body is not None else []
        if para < len(paras):
            _invisible(paras[para])
    for spid in whole:
        shape = shapes[spid]
        if shape.getparent() is not None:
            shape.getparent().remove(shape)


_FILLS = ("noFill", "solidFill", "gradFill", "blipFill", "pattFill", "grpFill", "highlight")
_BULLETS = ("buNone", "buAutoNum", "buChar", "buBlip")


def _invisible(p) -> None:
    """Make a paragraph invisible without moving anything: transparent text, no bullet glyph."""
    from lxml import etree

    for run in p.iterfind("a:r", NS):
        _transparent(run, etree)
    for run in p.iterfind("a:fld", NS):
        _transparent(run, etree)
    ppr = _first_child(p, "pPr", etree)
    _drop(ppr, _BULLETS)
    after = next((el for el in ppr if _local(el) in ("tabLst", "defRPr", "extLst")), None)
    bu = etree.Element(_A + "buNone")
    if after is None:
        ppr.append(bu)
    else:
        after.addprevious(bu)


def _first_child(parent, tag: str, etree):
    """parent's a:TAG child, created as its first child when missing (properties come first)."""
    el = parent.find(f"a:{tag}", NS)
    if el is None:
        el = etree.Element(_A + tag)
        parent.insert(0, el)
    return el


def _drop(parent, tags) -> None:
    for tag in tags:
        for el in parent.findall(f"a:{tag}", NS):
            parent.remove(el)


def _transparent(run, etree) -> None:
    rpr = _first_child(run, "rPr", etree)
    _drop(rpr, _FILLS)
    for attr, off in (("u", "none"), ("strike", "noStrike")):
        if attr in rpr.attrib:
            rpr.set(attr, off)
    fill = etree.Element(_A + "solidFill")
    etree.SubElement(etree.SubElement(fill, _A + "srgbClr", val="000000"), _A + "alpha", val="0")
    ln = rpr.find("a:ln", NS)
    if ln is not None:
        ln.addnext(fill)
    else:
        rpr.insert(0, fill)


# --------------------------------------------------------------------------- fonts
def fonts_named(prs, slides: list[SlideInfo]) -> list[str]:
    """Latin typefaces the visible slides name, plus the theme's heading and body fonts."""
    names: set[str] = set()
    visible = {s.number for s in slides if not s.hidden}
    for n, slide in enumerate(prs.slides, 1):
        if n in visible:
            names.update(el.get("typeface", "") for el in slide._element.iterfind(".//a:latin", NS))
    from lxml import etree

    for part in prs.part.package.iter_parts():
        if part.content_type.endswith("theme+xml"):
            try:
                root = etree.fromstring(part.blob)
            except etree.XMLSyntaxError:
                continue
            for path in ("a:majorFont/a:latin", "a:minorFont/a:latin"):
                names.update(el.get("typeface", "") for el in root.iterfind(f".//a:fontScheme/{path}", NS))
    return sorted(n for n in names if n and not n.startswith("+"))
