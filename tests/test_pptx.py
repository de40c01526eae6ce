"""PowerPoint / ODP decks in: real decks (python-pptx), converted by the real LibreOffice,
rendered with --preview and decoded.

One conversion of the sample deck is shared by the module (AVATAR_CACHE points at a
module folder); the error cases fail before any LibreOffice run.
"""
from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from avatar.cli import main
from avatar.errors import AvatarError

import decks

pytestmark = pytest.mark.skipif(shutil.which("soffice") is None and shutil.which("libreoffice") is None,
                                reason="LibreOffice is not installed (apt-get install libreoffice-impress)")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    folder = tmp_path_factory.mktemp("deck-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AVATAR_CACHE", str(folder))
        mp.delenv("AVATAR_SOFFICE", raising=False)
        yield folder


@pytest.fixture(scope="module")
def sample(cache, tmp_path_factory):
    """(deck path, Presentation, warnings) of the sample deck, converted once."""
    from avatar.script import load

    folder = tmp_path_factory.mktemp("deck")
    path = decks.sample_deck(folder)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pres = load(path)
    return path, pres, [str(w.message) for w in caught]


@pytest.fixture(scope="module")
def rendered(sample, tmp_path_factory):
    from avatar.api import render

    path, _, _ = sample
    out = tmp_path_factory.mktemp("render") / "talk.mp4"
    with warnings.catch_warnings():                  # the deck's warnings: see test_one_scene_per_visible_slide
        warnings.simplefilter("ignore")
        result = render(path, out, preview=True, jobs=1, cache_dir=out.parent / "scenes")
    return out, result


def _cli(args, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        main(args)
    return e.value.code, capsys.readouterr().err


# --------------------------------------------------------------------------- loading
def test_one_scene_per_visible_slide(sample):
    path, pres, caught = sample
    assert pres.title == "Quarterly review"
    assert len(pres.scenes) == 4                     # slide 4 is hidden
    pages = [s.slide.page for s in pres.scenes]
    assert pages == [1, 2, None, 6]
    build = pres.scenes[2].slide
    assert build.pages == [3, 4, 5] and build.reveal and build.reveal_items == ["", ""]
    assert all(s.slide.layout == "pdf" and s.slide.pdf == pres.scenes[0].slide.pdf for s in pres.scenes)
    # notes -> narration; the [layout: side] option is taken out of it
    assert pres.scenes[0].narration == "Welcome to the quarterly review."
    assert pres.scenes[1].narration == "This slide shows a picture.\nColours: red and blue."
    assert pres.scenes[1].avatar.layout == "side" and pres.avatar.layout == "pip"
    assert "never said" not in " ".join(s.narration for s in pres.scenes)
    # no notes: a silent scene of the default length, and a warning naming the slide
    assert pres.scenes[3].narration == "" and pres.scenes[3].duration == 3.0
    assert any("slide 5 has no speaker notes" in w for w in caught)
    # transitions: only slide 2 fades in; the rest are cuts
    assert pres.transition == "cut" and pres.scenes[1].transition == "crossfade"
    assert pres.scenes[2].transition is None


def test_converted_pdf_pages(sample):
    import pypdfium2 as pdfium

    _, pres, _ = sample
    doc = pdfium.PdfDocument(str(pres.scenes[0].slide.pdf))
    try:
        assert len(doc) == 6                         # 1 + 1 + 3 build steps + 1
        texts = [doc[i].get_textpage().get_text_range() for i in range(len(doc))]
    finally:
        doc.close()
    assert "Quarterly review" in texts[0] and "The picture" in texts[1] and "Thanks" in texts[5]
    # build steps: the paragraphs not yet shown are there but invisible (nothing moves); the
    # pixels tell (test_build_steps_at_next_times); the text layer keeps all three
    assert all("Alpha point" in t for t in texts[2:5])


def test_conversion_is_cached_and_verified(sample, cache, monkeypatch):
    from avatar.script.deck import converted

    path, pres, _ = sample
    monkeypatch.setenv("AVATAR_SOFFICE", str(cache / "no-such-soffice"))
    assert converted(path).pdf == Path(pres.scenes[0].slide.pdf)      # no LibreOffice needed
    pdf = Path(pres.scenes[0].slide.pdf)
    good = pdf.read_bytes()
    pdf.write_bytes(good[:-200] + b"x" * 200)                          # damaged in the cache
    with pytest.raises(AvatarError, match="AVATAR_SOFFICE"):           # so it converts again
        converted(path)
    monkeypatch.delenv("AVATAR_SOFFICE")
    stale = pdf.parent.parent / ".tmp-killed"           # what a killed conversion leaves behind
    stale.mkdir()
    os.utime(stale, (1e9, 1e9))
    again = converted(path)
    assert not stale.exists()
    assert again.pdf == pdf and len(again.slides) == 4
    assert [p.name for p in pdf.parent.iterdir()] and sorted(p.name for p in pdf.parent.iterdir()) == [
        "deck.json", "deck.pdf"]
    assert not [p for p in pdf.parent.parent.iterdir() if p.name.startswith(".tmp-")]


# --------------------------------------------------------------------------- rendering
def _decode(path: Path, wanted: set[int]) -> tuple[dict[int, np.ndarray], int]:
    import av

    frames, n = {}, 0
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i in wanted:
                frames[i] = f.to_ndarray(format="rgb24")
            n = i + 1
    return frames, n


def _page_in_box(pdf: Path, page: int, box) -> tuple[np.ndarray, tuple[int, int]]:
    """The PDF page as the slide shows it: fitted into the content box, centred."""
    from avatar.compose.images import render_pdf_page

    x0, y0, x1, y1 = box
    im = np.asarray(render_pdf_page(pdf, page, (x1 - x0, y1 - y0)))
    h, w = im.shape[:2]
    return im, (x0 + (x1 - x0 - w) // 2, y0 + (y1 - y0 - h) // 2)


def _strong_diff(frame: np.ndarray, pdf: Path, page: int, box) -> float:
    """Fraction of the slide's pixels that differ clearly from `page` (compression noise is small)."""
    im, (x, y) = _page_in_box(pdf, page, box)
    crop = frame[y:y + im.shape[0], x:x + im.shape[1]].astype(int)
    return float((np.abs(crop - im.astype(int)).max(axis=2) > 60).mean())


def _timeline(pres):
    """Per scene: (first frame, frame count, Speech), from narrating each scene as render does."""
    from avatar.speech.narrate import narrate_scene
    from avatar.types import Motion

    out, start = [], 0
    for sc in pres.scenes:
        speech = narrate_scene(pres, sc)
        n = Motion.frame_count(speech.duration, pres.fps)
        out.append((start, n, speech))
        start += n
    return out


def test_render_scene_durations_and_pages(sample, rendered):
    from avatar.compose import load_theme
    from avatar.compose.layout import plan_layout
    from avatar.api import apply_options
    from avatar.video import probe

    _, pres, _ = sample
    out, result = rendered
    shown = apply_options(pres, preview=True)
    assert result.scenes == 4
    timeline = _timeline(shown)
    assert timeline[3][1] == round(3.0 * shown.fps)               # the silent slide: 3 s
    mids = {start + n // 2: i for i, (start, n, _) in enumerate(timeline)}
    frames, total = _decode(out, set(mids))
    assert total == sum(n for _, n, _ in timeline)                 # each scene as long as its narration
    assert abs(probe(out)["duration"] - total / shown.fps) < 0.1
    theme = load_theme(shown.theme)
    pdf = Path(shown.scenes[0].slide.pdf)
    for k, i in mids.items():
        sc = shown.scenes[i]
        box = plan_layout(shown, sc, theme).content_box
        diffs = {p: _strong_diff(frames[k], pdf, p, box) for p in range(1, 7)}
        expected = sc.slide.pages[-1] if sc.slide.pages and k > timeline[i][0] + timeline[i][1] else None
        best = min(diffs, key=diffs.get)
        want = expected or (sc.slide.page or _step_page(sc, timeline[i], k, shown.fps))
        assert best == want, (i, diffs)
        assert diffs[best] < 0.01                                  # the slide is on screen as converted


def _step_page(scene, entry, frame: int, fps: float) -> int:
    start, _, speech = entry
    t = (frame - start) / fps
    marks = [m for kind, m in speech.markers if kind == "next"]
    return scene.slide.pages[sum(m <= t for m in marks)]


def test_build_steps_at_next_times(sample, rendered):
    from avatar.compose import load_theme
    from avatar.compose.layout import plan_layout
    from avatar.api import apply_options

    _, pres, _ = sample
    out, _ = rendered
    shown = apply_options(pres, preview=True)
    start, n, speech = _timeline(shown)[2]
    marks = [t for kind, t in speech.markers if kind == "next"]
    assert len(marks) == 2 and 0 < marks[0] < marks[1] < speech.duration
    fps = shown.fps
    # a frame just before and just after each [next]; the scene starts with a cut (no fade)
    probes = {start + 1: 3}
    for k, t in enumerate(marks):
        probes[start + int(np.floor(t * fps)) - 1] = 3 + k
        probes[start + int(np.ceil(t * fps)) + 1] = 4 + k
    probes[start + n - 2] = 5
    frames, _ = _decode(out, set(probes))
    box = plan_layout(shown, shown.scenes[2], load_theme(shown.theme)).content_box
    pdf = Path(shown.scenes[2].slide.pdf)
    for frame, page in probes.items():
        diffs = {p: _strong_diff(frames[frame], pdf, p, box) for p in (3, 4, 5)}
        assert min(diffs, key=diffs.get) == page, (frame, page, diffs)


def test_captions_are_the_notes(rendered):
    import srt

    out, _ = rendered
    subs = list(srt.parse(out.with_suffix(".srt").read_text()))
    text = " ".join(" ".join(s.content.split()) for s in subs)
    assert text == ("Welcome to the quarterly review. This slide shows a picture. Colours: red and blue. "
                    "First alpha. Then beta. And finally gamma.")


# --------------------------------------------------------------------------- convert / extends
def test_convert_writes_yaml_that_renders_the_same(sample, tmp_path, capsys):
    from avatar.script import load

    path, pres, _ = sample
    out = tmp_path / "talk.yaml"
    code = None
    try:
        main(["convert", str(path), "-o", str(out)])
    except SystemExit as e:
        code = e.code
    assert code in (None, 0)
    assert "wrote" in capsys.readouterr().out
    pdf = tmp_path / "talk.slides.pdf"
    assert pdf.is_file() and pdf.read_bytes() == Path(pres.scenes[0].slide.pdf).read_bytes()
    text = out.read_text()
    assert "# slide 2: The picture" in text and "layout: side" in text and "pdf: talk.slides.pdf" in text
    again = load(out)
    assert [s.narration for s in again.scenes] == [s.narration for s in pres.scenes]
    assert [(s.slide.page, s.slide.pages, s.slide.reveal) for s in again.scenes] == \
           [(s.slide.page, s.slide.pages, s.slide.reveal) for s in pres.scenes]
    assert all(Path(s.slide.pdf) == pdf for s in again.scenes)
    assert again.scenes[1].avatar.layout == "side" and again.transition == "cut"
    assert again.scenes[3].duration == 3.0
    # a second convert does not overwrite the edited files without --force
    assert "narration: |" in text                          # the two-line notes, as a block
    out.write_text(text.replace("This slide shows a picture.", "My own words."))
    code, err = _cli(["convert", str(path), "-o", str(out)], capsys)
    assert code == 2 and "--force" in err and err.count("\n") == 1
    assert "My own words." in out.read_text()
    main_ok = ["convert", str(path), "-o", str(out), "--force", "--read-titles"]
    try:
        main(main_ok)
    except SystemExit as e:
        assert e.code in (None, 0)
    assert load(out).scenes[3].narration == "The end."


def test_yaml_extends_a_deck(sample, tmp_path):
    from avatar.script import load

    path, pres, _ = sample
    over = tmp_path / "over.yaml"
    over.write_text(f"extends: {path}\ntitle: My title\navatar: {{layout: none}}\nvoice: joe-slow\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        deck = load(over)
    assert deck.title == "My title" and deck.avatar.layout == "none" and deck.voice.preset == "joe-slow"
    assert [s.narration for s in deck.scenes] == [s.narration for s in pres.scenes]
    assert deck.scenes[1].avatar.layout == "side"        # the slide's own option still wins


@pytest.mark.parametrize("fmt", ["odp", "ppt"])
def test_odp_and_ppt_decks(cache, tmp_path, fmt):
    """An .odp / .ppt (made here by LibreOffice from a pptx): notes, hidden slide and builds survive."""
    from avatar.script import load
    from avatar.script.deck import office

    src = decks.sample_deck(tmp_path, "made.pptx")
    other = office.convert([src], fmt, tmp_path / fmt, timeout=120, what=str(src))[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        deck = load(other)
    assert [s.narration for s in deck.scenes][:3] == [
        "Welcome to the quarterly review.", "This slide shows a picture.\nColours: red and blue.",
        "First alpha. [next] Then beta. [next] And finally gamma."]
    assert len(deck.scenes) == 4 and deck.scenes[1].avatar.layout == "side"
    assert deck.scenes[2].slide.pages == [3, 4, 5]


# --------------------------------------------------------------------------- errors
def _deck_with(tmp_path: Path, notes: str | None, name: str = "d.pptx", **kw) -> Path:
    prs = decks.new_deck()
    decks.text_slide(prs, "One", ["a", "b"], notes=notes, **kw)
    path = tmp_path / name
    prs.save(path)
    return path


@pytest.mark.parametrize("notes, words", [
    ("[layuot: side] Hi.", ["slide 1 notes", "[layuot: side]", "did you mean 'layout'"]),
    ("[layout: quote] Hi.", ["slide 1 notes", "where the presenter sits"]),
    ("[voice: nobody] Hi.", ["slide 1 notes", "unknown voice preset 'nobody'"]),
    ("[duration: -1] Hi.", ["slide 1 notes", "duration"]),
    ("Hi. [next] one [next] two", ["slide 1 notes", "2 [next] markers", "0 build steps"]),
    ("Hi [pause forever]", ["slide 1 notes", "bad duration"]),
])
def test_bad_notes_are_one_line_errors(cache, tmp_path, capsys, notes, words, monkeypatch):
    monkeypatch.setenv("AVATAR_SOFFICE", str(tmp_path / "no-soffice"))    # fails before LibreOffice runs
    path = _deck_with(tmp_path, notes)
    out = tmp_path / "o.mp4"
    code, err = _cli(["render", str(path), "-o", str(out)], capsys)
    assert code == 2 and err.count("\n") == 1 and not out.exists(), err
    for w in words:
        assert w in err, err


def test_deck_errors(cache, tmp_path, capsys, monkeypatch):
    from pptx import Presentation

    out = tmp_path / "talk.yaml"

    def fails(path, *words):
        code, err = _cli(["convert", str(path), "-o", str(out)], capsys)
        assert code == 2 and err.count("\n") == 1, err
        for w in words:
            assert w in err, err
        assert not out.exists() and not (tmp_path / "talk.slides.pdf").exists()

    broken = tmp_path / "broken.pptx"
    broken.write_bytes(b"PK\x03\x04 this is not a deck")
    fails(broken, "broken.pptx", "not a readable PowerPoint deck")
    fails(tmp_path / "missing.pptx", "missing.pptx", "not found")
    empty = tmp_path / "empty.pptx"
    Presentation().save(empty)
    fails(empty, "empty.pptx", "no slides")
    hidden = _deck_with(tmp_path, "x", name="hidden.pptx")
    prs = Presentation(hidden)
    prs.slides[0]._element.set("show", "0")
    prs.save(hidden)
    fails(hidden, "all 1 slides are hidden")
    fails(tmp_path / "talk.md", "convert reads a deck")

    # a real password-protected deck (ECMA-376 agile encryption, as PowerPoint writes it)
    from msoffcrypto.format.ooxml import OOXMLFile

    plain = _deck_with(tmp_path, "Hello.", name="plain.pptx")
    locked = tmp_path / "locked.pptx"
    with open(plain, "rb") as f, open(locked, "wb") as g:
        OOXMLFile(f).encrypt("secret", g)
    fails(locked, "locked.pptx", "password-protected")

    # notes that are a picture, not text
    prs = decks.new_deck()
    s = decks.text_slide(prs, "One", ["a"], notes="")
    notes = s.notes_slide
    _, rid = notes.part.get_or_add_image_part(str(decks.test_image(tmp_path / "p.png")))
    notes.shapes._spTree.add_pic(90, "Picture", "", rid, 0, 0, 914400, 685800)   # python-pptx has no API for it
    pic = tmp_path / "picnotes.pptx"
    prs.save(pic)
    fails(pic, "slide 1 notes", "no text")

    # LibreOffice missing: the error names the package
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    fresh = _deck_with(tmp_path, "Never converted before.", name="fresh.pptx")     # not in the cache
    fails(fresh, "LibreOffice is not installed", "apt-get install libreoffice-impress")


def test_picture_build_and_missing_font(cache, tmp_path, capsys):
    """A whole shape (a picture) that flies in on a click, text in a font the machine lacks."""
    import pypdfium2 as pdfium

    from avatar.script import load

    prs = decks.new_deck()
    s = decks.text_slide(prs, "Picture on click", ["Look"], font="NoSuchFont Xyz",
                         notes="Here it comes. [next] There it is.")
    pic = s.shapes.add_picture(str(decks.test_image(tmp_path / "p.png")), 0, 0)
    s._element.append(decks.timing([[(pic.shape_id, None, "entr", "clickEffect")]]))
    path = tmp_path / "pic.pptx"
    prs.save(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        deck = load(path)
    fonts = [str(w.message) for w in caught if "not installed" in str(w.message)]
    assert len(fonts) == 1 and "NoSuchFont Xyz" in fonts[0]
    slide = deck.scenes[0].slide
    assert slide.pages == [1, 2] and slide.reveal
    doc = pdfium.PdfDocument(str(slide.pdf))
    try:
        before, after = (np.asarray(doc[i].render(scale=0.3).to_pil().convert("RGB")).astype(int) for i in (0, 1))
    finally:
        doc.close()
    red = [((im[..., 0] > 180) & (im[..., 1] < 80) & (im[..., 2] < 80)).mean() for im in (before, after)]
    assert red[0] == 0 and red[1] > 0.01                 # the picture is only on the second page
    assert np.abs(before - after).max(axis=2)[before.shape[0] // 2:, before.shape[1] // 2:].max() == 0
    # `avatar check` on the deck: served from the cache, one scene
    try:
        main(["check", str(path)])
    except SystemExit as e:
        assert e.code in (None, 0)
    assert "scenes    1 (1 with slides)" in capsys.readouterr().out


# --------------------------------------------------------------------------- notes options (no LibreOffice)
def test_notes_options_are_taken_out():
    from avatar.script.deck import split_options

    opts, text = split_options("[layout: side] [voice: joe-slow]\nHello. [pause 0.5s] [next] Bye.\n"
                               "[avatar: {position: top-left}] [transition: cut] [duration: 4]", "d.pptx",
                               "slide 1 notes")
    assert opts == {"avatar": {"layout": "side", "position": "top-left"}, "voice": {"preset": "joe-slow"},
                    "transition": "cut", "duration": 4}
    assert text.split() == ["Hello.", "[pause", "0.5s]", "[next]", "Bye."]
    with pytest.raises(AvatarError, match=r"\[pause: 1s\].*\[pause 0.5s\]"):
        split_options("[pause: 1s]", "d.pptx", "slide 2 notes")


def test_slide_pages_model():
    from pydantic import ValidationError

    from avatar.script.models import Slide

    s = Slide(layout="pdf", pdf="x.pdf", pages=[2, 3, 3], reveal=True)
    assert s.reveal_items == ["", ""]
    with pytest.raises(ValidationError, match="not both"):
        Slide(layout="pdf", pdf="x.pdf", page=1, pages=[1, 2])
    with pytest.raises(ValidationError, match="1-based"):
        Slide(layout="pdf", pdf="x.pdf", pages=[0, 1])


def test_build_states_from_timing():
    """Clicks, auto-start effects, exits, emphasis-only clicks and whole-shape builds (XML only)."""
    from avatar.script.deck.pptx import SlideInfo, build_states

    prs = decks.new_deck()
    s = decks.text_slide(prs, "T", ["a", "b", "c"])
    el = s._element
    el.append(decks.timing([
        [(9, None, "entr", "afterEffect")],                               # plays at once: shown from the start
        [(4, 1, "entr", "clickEffect"), (7, None, "entr", "withEffect")],  # click 1: paragraph 1 and shape 7
        [(4, 0, "emph", "clickEffect")],                                  # click 2: emphasis only, nothing changes
        [(4, 2, "entr", "clickEffect"), (7, None, "exit", "afterEffect")],  # click 3: paragraph 2 in, shape 7 out
    ]))
    states = build_states(el)
    assert states == [frozenset({("4", 1), ("7", None), ("4", 2)}), frozenset({("4", 2)}), frozenset({("4", 2)}),
                      frozenset({("7", None)})]
    info = SlideInfo(number=1, states=states)
    assert len(info.distinct) == 3                     # click 2 reuses the page of click 1



def test_next_markers_are_counted_against_reveal_items(tmp_path):
    """[next] markers are checked against what a slide reveals: pdf build pages, two_columns items."""
    from avatar.script import load

    pdf = tmp_path / "p.pdf"
    from PIL import Image

    Image.new("RGB", (64, 36), "white").save(pdf, save_all=True,
                                            append_images=[Image.new("RGB", (64, 36), "gray")])
    ok = tmp_path / "ok.yaml"
    ok.write_text(f"scenes:\n  - slide: {{layout: pdf, pdf: {pdf}, pages: [1, 2], reveal: true}}\n"
                  "    narration: One. [next] Two.\n"
                  "  - slide: {layout: two_columns, left: [a], right: [b], reveal: true}\n"
                  "    narration: A. [next] B. [next] done.\n")
    deck = load(ok)
    assert deck.scenes[0].slide.reveal_items == [""] and deck.scenes[1].slide.reveal_items == ["a", "b"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"scenes:\n  - slide: {{layout: pdf, pdf: {pdf}, pages: [1, 2], reveal: true}}\n"
                   "    narration: One. [next] Two. [next] Three.\n")
    with pytest.raises(AvatarError, match=r"bad.yaml:3: scenes\[0\].narration: 2 \[next\] markers but only 1 page step"):
        load(bad)
