"""Real PowerPoint decks built with python-pptx, for tests/test_pptx.py and bench/bench_pptx.py.

python-pptx has no animation API, so the build animations are written as the p:timing XML
PowerPoint itself writes for an "Appear" entrance by paragraph (one click per paragraph).
"""
from __future__ import annotations

from pathlib import Path

P_NS = "http://schemas.openxmlformats.org/presentationml/2006/main"


def click_timing(spid: int, paragraphs: list[int]):
    """<p:timing>: one click per paragraph index in `paragraphs`, each an Appear entrance."""
    return timing([[(spid, para, "entr", "clickEffect")] for para in paragraphs])


def timing(groups: list[list[tuple]]):
    """<p:timing> of the main sequence `groups`: each group a list of effects
    (shape id, paragraph index or None, presetClass "entr"/"exit"/"emph", nodeType
    "clickEffect"/"withEffect"/"afterEffect"); a group whose first effect is a clickEffect
    waits for a click."""
    from lxml import etree

    ids = iter(range(3, 10_000))
    pars = []
    for group in groups:
        effects = []
        for spid, para, cls, node in group:
            c, d = next(ids), next(ids)
            target = (f'<p:spTgt spid="{spid}"><p:txEl><p:pRg st="{para}" end="{para}"/></p:txEl></p:spTgt>'
                      if para is not None else f'<p:spTgt spid="{spid}"/>')
            value = "hidden" if cls == "exit" else "visible"
            effects.append(
                f'<p:par><p:cTn id="{c}" presetID="1" presetClass="{cls}" presetSubtype="0" fill="hold" '
                f'grpId="0" nodeType="{node}"><p:stCondLst><p:cond delay="0"/></p:stCondLst><p:childTnLst>'
                f'<p:set><p:cBhvr><p:cTn id="{d}" dur="1" fill="hold"><p:stCondLst><p:cond delay="0"/>'
                f'</p:stCondLst></p:cTn><p:tgtEl>{target}</p:tgtEl><p:attrNameLst><p:attrName>style.visibility'
                f'</p:attrName></p:attrNameLst></p:cBhvr><p:to><p:strVal val="{value}"/></p:to></p:set>'
                f'</p:childTnLst></p:cTn></p:par>')
        a, b = next(ids), next(ids)
        start = ('<p:cond delay="indefinite"/>' if group[0][3] == "clickEffect"
                 else '<p:cond delay="indefinite"/><p:cond evt="onBegin" delay="0"><p:tn val="2"/></p:cond>')
        pars.append(f'<p:par><p:cTn id="{a}" fill="hold"><p:stCondLst>{start}</p:stCondLst><p:childTnLst>'
                    f'<p:par><p:cTn id="{b}" fill="hold"><p:stCondLst><p:cond delay="0"/></p:stCondLst>'
                    f'<p:childTnLst>{"".join(effects)}</p:childTnLst></p:cTn></p:par></p:childTnLst></p:cTn></p:par>')
    spids = sorted({e[0] for g in groups for e in g})
    blds = "".join(f'<p:bldP spid="{s}" grpId="0" build="p"/>' for s in spids)
    xml = (f'<p:timing xmlns:p="{P_NS}"><p:tnLst><p:par><p:cTn id="1" dur="indefinite" restart="never" '
           f'nodeType="tmRoot"><p:childTnLst><p:seq concurrent="1" nextAc="seek"><p:cTn id="2" dur="indefinite" '
           f'nodeType="mainSeq"><p:childTnLst>{"".join(pars)}</p:childTnLst></p:cTn>'
           f'<p:prevCondLst><p:cond evt="onPrev" delay="0"><p:tgtEl><p:sldTgt/></p:tgtEl></p:cond></p:prevCondLst>'
           f'<p:nextCondLst><p:cond evt="onNext" delay="0"><p:tgtEl><p:sldTgt/></p:tgtEl></p:cond></p:nextCondLst>'
           f'</p:seq></p:childTnLst></p:cTn></p:par></p:tnLst><p:bldLst>{blds}</p:bldLst></p:timing>')
    return etree.fromstring(xml)


def fade_transition():
    from lxml import etree

    return etree.fromstring(f'<p:transition xmlns:p="{P_NS}" spd="med"><p:fade/></p:transition>')


def _insert_transition(slide, el) -> None:
    """p:transition goes after p:clrMapOvr and before p:timing (schema order)."""
    sld = slide._element
    timing = sld.find(f"{{{P_NS}}}timing")
    if timing is not None:
        timing.addprevious(el)
    else:
        sld.append(el)


def new_deck():
    from pptx import Presentation
    from pptx.util import Inches

    prs = Presentation()
    prs.slide_width, prs.slide_height = Inches(13.333), Inches(7.5)
    return prs


def text_slide(prs, title: str, lines: list[str], *, notes: str | None = None, build: bool = False,
               font: str = "DejaVu Sans", size: int = 36, color=(0x1F, 0x3A, 0x93)):
    """A title + a text box of `lines` (one paragraph each); build=True: every line after the
    first appears on a click."""
    from pptx.dml.color import RGBColor
    from pptx.util import Inches, Pt

    s = prs.slides.add_slide(prs.slide_layouts[5])       # "Title Only"
    s.shapes.title.text = title
    box = s.shapes.add_textbox(Inches(1.0), Inches(2.0), Inches(11.3), Inches(4.8))
    tf = box.text_frame
    tf.word_wrap = True
    for i, line in enumerate(lines):
        p = tf.paragraphs[0] if i == 0 else tf.add_paragraph()
        run = p.add_run()
        run.text = line
        run.font.size, run.font.name, run.font.bold = Pt(size), font, True
        run.font.color.rgb = RGBColor(*color)
    if build and len(lines) > 1:
        s._element.append(click_timing(box.shape_id, list(range(1, len(lines)))))
    if notes is not None:
        s.notes_slide.notes_text_frame.text = notes
    return s


def picture_slide(prs, title: str, image: Path, *, notes: str | None = None, fade: bool = False):
    from pptx.util import Inches

    s = prs.slides.add_slide(prs.slide_layouts[5])
    s.shapes.title.text = title
    s.shapes.add_picture(str(image), Inches(3.5), Inches(1.8), height=Inches(5.2))
    if notes is not None:
        s.notes_slide.notes_text_frame.text = notes
    if fade:
        _insert_transition(s, fade_transition())
    return s


def test_image(path: Path) -> Path:
    """A picture with big flat colour areas (easy to find on screen): red left, blue right, a green bar."""
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (400, 300), (220, 30, 30))
    d = ImageDraw.Draw(im)
    d.rectangle((200, 0, 399, 299), fill=(30, 60, 220))
    d.rectangle((0, 240, 399, 299), fill=(30, 170, 60))
    im.save(path)
    return path


def sample_deck(folder: Path, name: str = "deck.pptx") -> Path:
    """The test deck: title slide, picture slide (fade, side layout), a build slide with two clicks,
    a hidden slide, a slide without notes."""
    prs = new_deck()
    s = prs.slides.add_slide(prs.slide_layouts[0])
    s.shapes.title.text = "Quarterly review"
    s.placeholders[1].text = "Numbers and plans"
    s.notes_slide.notes_text_frame.text = "Welcome to the quarterly review."
    picture_slide(prs, "The picture", test_image(folder / "picture.png"),
                  notes="[layout: side]\nThis slide shows a picture.\nColours: red and blue.", fade=True)
    text_slide(prs, "Three steps", ["Alpha point", "Beta point", "Gamma point"], build=True,
               notes="First alpha. [next] Then beta. [next] And finally gamma.")
    hidden = text_slide(prs, "Hidden", ["Never shown"], notes="This is never said.")
    hidden._element.set("show", "0")
    text_slide(prs, "The end", ["Thanks"])
    path = folder / name
    prs.save(path)
    return path
