"""avatar.compose: themes, slides, layouts, captions, reveal, transitions (small real renders)."""
from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

from avatar.compose import (SceneComposer, contrast_ratio, crossfade, list_themes, load_theme, plan_layout,
                            render_background, render_slide, reveal_times)
from avatar.compose.theme import background_colors
from avatar.errors import AvatarError
from avatar.script.models import AvatarSpec, CaptionSpec, Presentation, Scene, Slide, ThemeSpec
from avatar.types import Cue, Identity, Speech, Word

SIZE = (640, 360)
BOX = (40, 30, 420, 300)            # a content box that leaves the right part of the frame free
MAGENTA = np.array([255, 0, 255], np.uint8)


@pytest.fixture(scope="module")
def theme():
    return load_theme(ThemeSpec())


def ink(img: np.ndarray, bg: np.ndarray, box=None) -> np.ndarray:
    """Mask of pixels that differ from the bare background (optionally inside a box only)."""
    diff = np.abs(img.astype(int) - bg.astype(int)).sum(-1) > 30
    if box is not None:
        x0, y0, x1, y1 = box
        out = np.zeros_like(diff)
        out[y0:y1, x0:x1] = diff[y0:y1, x0:x1]
        return out
    return diff


def outside(mask: np.ndarray, box) -> int:
    x0, y0, x1, y1 = box
    m = mask.copy()
    m[y0:y1, x0:x1] = False
    return int(m.sum())


# --------------------------------------------------------------------------- themes
def test_shipped_themes_load_and_are_readable():
    names = list_themes()
    assert {"default", "dark", "warm"} <= set(names)
    for name in names:
        t = load_theme(ThemeSpec(name=name))
        assert t.font.is_file() and t.font_bold.is_file() and t.font_mono.is_file()
        for bg in background_colors(t.background)[:2]:
            assert contrast_ratio(t.text_color, bg) >= 7, name      # WCAG AAA for body text
            assert contrast_ratio(t.title_color, bg) >= 7, name
            assert contrast_ratio(t.accent_color, bg) >= 3, name    # graphics / large text


def test_theme_overrides_and_errors(tmp_path):
    t = load_theme(ThemeSpec(name="dark", accent_color="#ff0000", background="#102030", caption_style="box"))
    assert t.name == "dark" and t.accent_color == (255, 0, 0) and t.caption_style == "box"
    assert render_background(t.background, (8, 4))[0, 0].tolist() == [16, 32, 48]
    grad = render_background("linear-gradient(#000000, #ffffff)", (4, 100))
    assert grad[0, 0, 0] < 10 and grad[-1, 0, 0] > 245 and np.all(np.diff(grad[:, 0, 0].astype(int)) >= 0)
    with pytest.raises(AvatarError, match="default"):       # the message lists the themes
        load_theme(ThemeSpec(name="nope"))
    with pytest.raises(AvatarError, match="accent_color"):
        load_theme(ThemeSpec(accent_color="not-a-colour"))
    with pytest.raises(AvatarError, match="font"):
        load_theme(ThemeSpec(font="NoSuchFont"))
    bad = tmp_path / "mine.yaml"
    bad.write_text("text_colour: '#000000'\n")
    with pytest.raises(AvatarError, match="text_colour"):
        load_theme(ThemeSpec(name=str(bad)))
    broken = tmp_path / "broken.yaml"
    broken.write_text("background: '#000000'\ntext_color: [unclosed\n")
    with pytest.raises(AvatarError, match=r"broken.yaml:\d+: YAML syntax error"):   # one line, not a traceback
        load_theme(ThemeSpec(name=str(broken)))
    good = tmp_path / "ok.yaml"
    good.write_text("background: '#000000'\ntext_color: '#ffffff'\n")
    assert load_theme(ThemeSpec(name=str(good))).text_color == (255, 255, 255)


# --------------------------------------------------------------------------- slides
def _png(tmp_path, color=(200, 30, 30), size=(80, 50)):
    from PIL import Image

    p = tmp_path / "pic.png"
    Image.new("RGB", size, color).save(p)
    return p


def _pdf(tmp_path):
    from PIL import Image

    p = tmp_path / "deck.pdf"
    pages = [Image.new("RGB", (320, 180), c) for c in ((220, 20, 20), (20, 20, 220))]
    pages[0].save(p, save_all=True, append_images=pages[1:])
    return p


def all_slides(tmp_path):
    pic = _png(tmp_path)
    return [
        Slide(layout="title", title="Hello world", subtitle="A subtitle"),
        Slide(layout="bullets", title="Points", bullets=["first point", "second point", "third point"]),
        Slide(layout="image", title="Picture", image=pic),
        Slide(layout="image_text", title="Both", image=pic, text="Words beside the picture."),
        Slide(layout="two_columns", title="Compare", left=["CPU", "fast"], right=["GPU", "pretty"]),
        Slide(layout="quote", quote="Simplicity is prerequisite for reliability.", author="Dijkstra"),
        Slide(layout="code", title="Code", language="python", code="def f(x):\n    return x + 1  # add\n"),
        Slide(layout="pdf", pdf=_pdf(tmp_path), page=2),
    ]


def test_every_layout_renders_inside_its_box(tmp_path, theme):
    bg = render_background(theme.background, SIZE)
    for slide in all_slides(tmp_path):
        with warnings.catch_warnings():
            warnings.simplefilter("error")     # nothing here should overflow
            img = render_slide(slide, theme, SIZE, content_box=BOX)
        assert img.shape == (360, 640, 3) and img.dtype == np.uint8
        m = ink(img, bg)
        assert m.sum() > 300, slide.layout                    # something was drawn
        assert outside(m, BOX) == 0, slide.layout             # and only inside the box


def test_blank_is_background(theme):
    img = render_slide(Slide(layout="blank"), theme, SIZE)
    assert ink(img, render_background(theme.background, SIZE)).sum() == 0


def test_image_and_pdf_content(tmp_path, theme):
    slides = all_slides(tmp_path)
    img = render_slide(slides[2], theme, SIZE, content_box=BOX)
    red = (img[..., 0] > 180) & (img[..., 1] < 60) & (img[..., 2] < 60)
    assert red.sum() > 5000
    pdf = render_slide(slides[-1], theme, SIZE, content_box=BOX)          # page 2 is blue
    blue = (pdf[..., 2] > 180) & (pdf[..., 0] < 60)
    assert blue.sum() > 0.5 * (BOX[2] - BOX[0]) * (BOX[3] - BOX[1])
    with pytest.raises(AvatarError, match=r"2 pages"):
        render_slide(Slide(layout="pdf", pdf=slides[-1].pdf, page=3), theme, SIZE)
    with pytest.raises(AvatarError, match="not found"):
        render_slide(Slide(layout="image", image=tmp_path / "missing.png"), theme, SIZE)


def test_code_is_highlighted(theme):
    img = render_slide(Slide(layout="code", language="python", code="def f(x):\n    return 'a'  # c\n"),
                       theme, SIZE)
    colours = {tuple(c) for c in img.reshape(-1, 3)[::3]}
    saturated = {c for c in colours if max(c) - min(c) > 80}
    assert len(saturated) > 20     # several token colours, anti-aliased


def test_text_shrinks_to_fit_and_overflow_warns(theme):
    bg = render_background(theme.background, SIZE)
    few = Slide(layout="bullets", title="T", bullets=["a rather long bullet number 0 that must wrap"])
    many = Slide(layout="bullets", title="T", bullets=[f"a rather long bullet number {i} that must wrap" for i in range(9)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = render_slide(few, theme, SIZE, content_box=BOX)
        b = render_slide(many, theme, SIZE, content_box=BOX)

    def glyph_height(img):    # height of the first bullet's text line (rows with ink right of the dot)
        m = ink(img, bg, (BOX[0] + 30, 90, BOX[2], BOX[3]))
        rows = np.where(m.any(1))[0]
        first = rows[: np.argmax(np.diff(rows) > 3) + 1] if np.any(np.diff(rows) > 3) else rows
        return first.max() - first.min()

    assert glyph_height(b) < glyph_height(a)          # shrunk
    assert outside(ink(b, bg), BOX) == 0               # still inside
    huge = Slide(layout="bullets", title="Overflowing", bullets=["word " * 40] * 30)
    with pytest.warns(UserWarning, match="Overflowing"):
        c = render_slide(huge, theme, SIZE, content_box=BOX)
    assert outside(ink(c, bg), BOX) == 0


def test_reveal_draws_first_k_bullets(theme):
    bg = render_background(theme.background, SIZE)
    s = Slide(layout="bullets", title="T", bullets=["one", "two", "three"], reveal=True)
    amounts = [ink(render_slide(s, theme, SIZE, revealed=k), bg).sum() for k in range(4)]
    assert amounts[0] < amounts[1] < amounts[2] < amounts[3]
    assert np.array_equal(render_slide(s, theme, SIZE, revealed=3), render_slide(s, theme, SIZE))


def test_text_and_bullets_both_drawn(theme):
    """A Markdown slide with a paragraph and a list keeps both: the text above the bullets."""
    bg = render_background(theme.background, SIZE)
    only = render_slide(Slide(layout="bullets", title="T", bullets=["one", "two"]), theme, SIZE, content_box=BOX)
    both = render_slide(Slide(layout="bullets", title="T", text="An opening sentence.", bullets=["one", "two"]),
                        theme, SIZE, content_box=BOX)
    rows = lambda img: np.flatnonzero(ink(img, bg, BOX).any(axis=1))
    assert ink(both, bg, BOX).sum() > ink(only, bg, BOX).sum() * 1.3
    assert rows(both)[-1] > rows(only)[-1]            # the bullets moved down below the text
    for layout in ("bullets", "image_text"):
        with pytest.warns(UserWarning, match="does not fit"):
            crowded = render_slide(Slide(layout=layout, text="x " * 400, bullets=["b"] * 12), theme, SIZE,
                                   content_box=BOX)
        assert outside(ink(crowded, bg), BOX) == 0


def test_two_columns_reveal_left_then_right(theme):
    bg = render_background(theme.background, SIZE)
    s = Slide(layout="two_columns", title="T", left=["a1", "a2"], right=["b1"], reveal=True)
    assert s.reveal_items == ["a1", "a2", "b1"]
    mid = (BOX[0] + BOX[2]) // 2
    left, right = (BOX[0], 80, mid - 20, BOX[3]), (mid + 20, 80, BOX[2], BOX[3])
    steps = [render_slide(s, theme, SIZE, content_box=BOX, revealed=k) for k in range(4)]
    lin = [ink(img, bg, left).sum() for img in steps]
    rin = [ink(img, bg, right).sum() for img in steps]
    assert lin[0] < lin[1] < lin[2] == lin[3] and rin[0] == rin[1] == rin[2] < rin[3]
    speech = Speech(np.zeros(16000, np.float32), 16000, markers=[("next", 0.2), ("next", 0.5), ("next", 0.8)])
    assert reveal_times(s, speech) == [0.2, 0.5, 0.8]


def test_slides_are_cached(theme):
    s = Slide(layout="title", title="Cached")
    assert render_slide(s, theme, SIZE) is render_slide(s, theme, SIZE)


# --------------------------------------------------------------------------- layouts
def _boxes_overlap(a, b):
    return a is not None and b is not None and a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.mark.parametrize("size", ["1280x720", "720x1280", "1080x1080"])
def test_layout_boxes_never_collide(size, theme):
    slide = Slide(layout="bullets", title="T", bullets=["a"])
    for layout, pos, cap_pos, frac in itertools.product(["pip", "side", "none"],
                                                        ["bottom-right", "bottom-left", "top-right", "top-left"],
                                                        ["bottom", "top"], [0.2, 0.32, 0.5]):
        p = Presentation(size=size, scenes=[Scene(slide=slide, narration="x")],
                         avatar=AvatarSpec(layout=layout, position=pos, size=frac),
                         captions=CaptionSpec(position=cap_pos))
        lay = plan_layout(p, p.scenes[0], theme)
        w, h = p.size
        for box in (lay.avatar_box, lay.content_box, lay.title_box, lay.caption_box):
            if box is not None:
                assert 0 <= box[0] < box[2] <= w and 0 <= box[1] < box[3] <= h, (layout, pos, box)
        av = lay.avatar_box
        if av is not None:
            b = lay.border
            ring = (av[0] - b, av[1] - b, av[2] + b, av[3] + b)
            for other in (lay.content_box, lay.title_box, lay.caption_box):
                assert not _boxes_overlap(ring, other), (size, layout, pos, cap_pos)
        assert not _boxes_overlap(lay.caption_box, lay.content_box), (size, layout, pos, cap_pos)
        cb = lay.content_box
        assert cb[2] - cb[0] > 0.25 * w and cb[3] - cb[1] > 0.25 * h, (size, layout, pos, cap_pos, frac)


def test_pip_corner_and_full_and_no_slide(theme):
    p = Presentation(size=(1280, 720), scenes=[Scene(slide=Slide(title="x"), narration="x"),
                                               Scene(narration="no slide")],
                     avatar=AvatarSpec(layout="pip", position="bottom-right", size=0.3))
    lay = plan_layout(p, p.scenes[0], theme)
    x0, y0, x1, y1 = lay.avatar_box
    assert x1 > 1200 and y1 > 650 and x0 > 900 and y0 > 400 and x1 - x0 == 216
    free = plan_layout(p, p.scenes[1], theme)
    assert free.mode == "full" and free.avatar_box == (0, 0, 1280, 720) and free.content_box is None


# --------------------------------------------------------------------------- composition
def make_identity(size=64, mask=None):
    img = np.zeros((size, size, 3), np.uint8)
    img[:] = MAGENTA
    pm = np.ones((size, size), np.float32) if mask is None else mask
    return Identity(image=img, landmarks=np.zeros((478, 3), np.float32), face_box=(0, 0, size, size),
                    face_mask=pm, person_mask=pm)


def words_speech(text: str, step=0.4, markers=()):
    ws = [Word(w, i * step, i * step + step * 0.8) for i, w in enumerate(text.split())]
    return Speech(np.zeros(int(len(ws) * step * 16000) + 1600, np.float32), 16000, words=ws, markers=list(markers))


def is_magenta(px):
    return (px[..., 0] > 200) & (px[..., 1] < 60) & (px[..., 2] > 200)


def test_pip_frames_avatar_where_expected_and_nothing_covered():
    slide = Slide(layout="bullets", title="A title", bullets=["first", "second"])
    p = Presentation(size=SIZE, fps=10, scenes=[Scene(slide=slide, narration="x")],
                     avatar=AvatarSpec(layout="pip", shape="rect", border=0), captions=CaptionSpec())
    ident = make_identity()
    speech = words_speech("hello there everyone")
    cues = [Cue(0.0, 0.6, ("hello there",), tuple(speech.words[:2]))]
    comp = SceneComposer(p, p.scenes[0], ident)
    face = np.broadcast_to(MAGENTA, (64, 64, 3)).copy()
    out = list(comp.frames(iter([face] * 3), speech, cues, 12, face_is_crop=True))
    assert len(out) == 12 and all(f.shape == (360, 640, 3) for f in out)
    lay = comp.layout
    x0, y0, x1, y1 = lay.avatar_box
    assert is_magenta(out[5][y0 + 2:y1 - 2, x0 + 2:x1 - 2]).all()       # face held after 3 frames
    mag = is_magenta(out[5])
    assert mag.sum() == pytest.approx((x1 - x0) * (y1 - y0), rel=0.05)   # nowhere else
    for box in (lay.title_box, lay.caption_box, lay.content_box):
        bx0, by0, bx1, by1 = box
        assert not mag[by0:by1, bx0:bx1].any()
    # captions: drawn during the cue, gone after it
    static = comp.background(None)
    cx0, cy0, cx1, cy1 = lay.caption_box
    assert ink(out[2], static, lay.caption_box).sum() > 200
    assert ink(out[8], static, lay.caption_box).sum() == 0


def test_full_layout_and_remove_background():
    half = np.zeros((64, 64), np.float32)
    half[:, 32:] = 1.0                                      # the "person" is the right half
    p = Presentation(size=SIZE, scenes=[Scene(narration="x")], captions=CaptionSpec(burn=False),
                     avatar=AvatarSpec(layout="full", background="remove"))
    comp = SceneComposer(p, p.scenes[0], make_identity(mask=half))
    f = next(comp.frames(None, words_speech("a b"), [], 1, face_is_crop=False))
    # the square photo sits in the middle of the 16:9 frame; its left half shows the theme background
    assert is_magenta(f[180, 330:400]).all()
    assert not is_magenta(f[180, 200:300]).any()
    assert not is_magenta(f[:, :100]).any()


def test_none_layout_and_badge():
    p = Presentation(size=SIZE, scenes=[Scene(slide=Slide(title="x"), narration="x")],
                     avatar=AvatarSpec(layout="none"), badge=True)
    comp = SceneComposer(p, p.scenes[0], make_identity())
    assert not comp.needs_face
    f = list(comp.frames(iter([np.zeros((64, 64, 3), np.uint8)]), words_speech("a"), [], 3))
    assert len(f) == 3 and not is_magenta(f[0]).any()
    assert ink(f[0], comp.background(None), (0, 0, 120, 30)).sum() > 50     # the AI-generated mark


def test_caption_highlight_changes_with_the_word():
    p = Presentation(size=SIZE, fps=10, scenes=[Scene(slide=Slide(title="x"), narration="x")],
                     avatar=AvatarSpec(layout="none"), captions=CaptionSpec(highlight=True))
    speech = words_speech("one two three", step=0.5)
    cues = [Cue(0.0, 1.5, ("one two three",), tuple(speech.words))]
    frames = list(SceneComposer(p, p.scenes[0], None).frames(None, speech, cues, 15))
    assert not np.array_equal(frames[1], frames[7])       # "one" vs "two" highlighted
    assert np.array_equal(frames[6], frames[8])           # same word, same image


def test_frames_reveal_bullets_over_time():
    slide = Slide(layout="bullets", title="T", bullets=["alpha point", "beta point"], reveal=True)
    speech = words_speech("intro words alpha point then beta point done")
    p = Presentation(size=SIZE, fps=10, scenes=[Scene(slide=slide, narration="x")],
                     avatar=AvatarSpec(layout="none"), captions=CaptionSpec(burn=False))
    comp = SceneComposer(p, p.scenes[0], None)
    frames = list(comp.frames(None, speech, [], 32))
    bg = render_background(comp.theme.background, SIZE)
    amounts = [ink(frames[i], bg).sum() for i in (0, 10, 31)]   # alpha at 0.8 s, beta at 2.0 s
    assert amounts[0] < amounts[1] < amounts[2]


# --------------------------------------------------------------------------- reveal times, transitions
def test_reveal_times_from_markers_and_words():
    s = Slide(layout="bullets", bullets=["Speed matters", "Quality too", "And cost"], reveal=True)
    sp = words_speech("first speed matters a lot then quality too and finally cost and cost", step=0.5,
                      markers=[("next", 0.2)])
    t = reveal_times(s, sp)
    assert t[0] == pytest.approx(0.2)                    # first marker
    assert t[1] == pytest.approx(6 * 0.5)                # "quality too" is word 6
    assert t[2] == pytest.approx(11 * 0.5)               # "and cost" is words 11-12 ("and finally" is no match)
    fuzzy = reveal_times(Slide(bullets=["Colours of the sky"], reveal=True), words_speech("look at the colors of the sky"))
    assert fuzzy == [pytest.approx(3 * 0.4)]             # "colors" (word 3) ~ "Colours"
    assert reveal_times(Slide(bullets=["a", "b"]), sp) == [0.0, 0.0]      # not a reveal slide
    unknown = reveal_times(Slide(bullets=["zzz", "yyy"], reveal=True), words_speech("nothing matches here"))
    assert 0 < unknown[0] < unknown[1] < 1.2 + 0.16      # spread over the narration


def test_crossfade_endpoints():
    prev = np.zeros((4, 4, 3), np.uint8)
    new = [np.full((4, 4, 3), 200, np.uint8) for _ in range(6)]
    out = list(crossfade(prev, iter(new), 3))
    assert len(out) == 6
    assert out[0][0, 0, 0] == pytest.approx(50, abs=1)     # 1/4 of the way
    assert out[2][0, 0, 0] == pytest.approx(150, abs=1)
    assert all(np.array_equal(a, b) for a, b in zip(out[3:], new[3:]))
    assert all(np.array_equal(a, b) for a, b in zip(crossfade(None, iter(new), 3), new))
    assert all(np.array_equal(a, b) for a, b in zip(crossfade(prev, iter(new), 0), new))


def test_logo_background_image_and_slide_background(tmp_path):
    from PIL import Image

    Image.new("RGB", (40, 40), (0, 200, 0)).save(tmp_path / "logo.png")
    Image.new("RGB", (32, 18), (10, 20, 120)).save(tmp_path / "bg.jpg")
    t = load_theme(ThemeSpec(logo="logo.png", logo_position="bottom-left", background_image="bg.jpg"), tmp_path)
    img = render_slide(Slide(layout="blank"), t, SIZE, content_box=BOX)
    green = (img[..., 1] > 180) & (img[..., 0] < 60)
    ys, xs = np.where(green)
    assert green.sum() > 300 and xs.min() >= BOX[0] and ys.max() < BOX[3] and xs.max() < BOX[0] + 40 \
        and ys.min() > BOX[3] - 40                                            # the logo, bottom-left of the box
    assert np.abs(img[5, 600].astype(int) - (10, 20, 120)).max() < 12        # background image fills the frame
    own = render_slide(Slide(layout="blank", background="#ff8800"), t, SIZE)
    assert own[5, 600].tolist() == [255, 136, 0]                             # per-slide background
    with pytest.raises(AvatarError, match="logo"):
        load_theme(ThemeSpec(logo="missing.png"), tmp_path)
    # a scene without a slide shows the background image too, as RGB frames like every other scene
    p = Presentation(size=SIZE, scenes=[Scene(narration="x")], avatar=AvatarSpec(layout="none"))
    f = next(SceneComposer(p, p.scenes[0], None, theme=t).frames(None, words_speech("x"), [], 1))
    assert f.shape == (SIZE[1], SIZE[0], 3) and np.abs(f[5, 600].astype(int) - (10, 20, 120)).max() < 12


def test_image_fit_fill_and_webp(tmp_path, theme):
    from PIL import Image

    p = tmp_path / "wide.webp"
    Image.new("RGB", (200, 50), (30, 200, 30)).save(p)      # very wide: 'fit' leaves bands, 'fill' covers
    green = {}
    for mode in ("fit", "fill"):
        img = render_slide(Slide(layout="image", image=p, fit=mode), theme, SIZE, content_box=BOX)
        g = (img[..., 1] > 180) & (img[..., 0] < 80)
        assert outside(g, BOX) == 0
        green[mode] = g.sum()
    box_area = (BOX[2] - BOX[0]) * (BOX[3] - BOX[1])
    assert green["fill"] == box_area
    assert 0.2 * box_area < green["fit"] < 0.4 * box_area


def test_caption_longer_than_planned_stays_in_its_strip():
    p = Presentation(size=SIZE, scenes=[Scene(slide=Slide(title="x"), narration="x")],
                     avatar=AvatarSpec(layout="none"), captions=CaptionSpec(max_lines=1))
    comp = SceneComposer(p, p.scenes[0], None)
    cue = Cue(0.0, 1.0, ("a first line of caption text", "a second line", "and a third one that is long too"))
    f = next(comp.frames(None, words_speech("a b c"), [cue], 1))
    m = ink(f, comp.background(None))
    assert m.sum() > 200 and outside(m, comp.layout.caption_box) == 0


def test_silent_scene_without_speech():
    p = Presentation(size=SIZE, scenes=[Scene(slide=Slide(title="Silent"), duration=1.0)])
    comp = SceneComposer(p, p.scenes[0], make_identity())
    out = list(comp.frames(None, None, [], 5))
    assert len(out) == 5 and is_magenta(out[0]).any()          # the still photo in its box
    with pytest.raises(ValueError):
        list(comp.frames(None, None, []))


# --------------------------------------------------------------------------- frames for the encoder
def _moving_faces(n, size=64, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size, size, 3), np.uint8) for _ in range(n)]


@pytest.mark.parametrize("case", ["pip", "overlap", "full-remove", "side", "none"])
def test_video_frames_are_the_whole_frame_pictures(case):
    """video_frames() (static picture + presenter rectangle) gives exactly the pictures of frames()
    (every frame composed whole), including captions and badge drawn over the presenter."""
    from avatar.video.mp4 import PatchedFrame

    slide = Slide(layout="bullets", title="T", bullets=["alpha point", "beta point"], reveal=True)
    avatar = {"pip": AvatarSpec(layout="pip", shape="rounded", position="bottom-left"),
              "overlap": AvatarSpec(layout="pip", shape="circle", position="bottom-right"),
              "full-remove": AvatarSpec(layout="full", background="remove"),
              "side": AvatarSpec(layout="side"), "none": AvatarSpec(layout="none")}[case]
    scene = Scene(narration="x") if case == "full-remove" else Scene(slide=slide, narration="x")
    p = Presentation(size=SIZE, fps=10, scenes=[scene], avatar=avatar, badge=True,
                     captions=CaptionSpec(highlight=True))
    half = np.zeros((64, 64), np.float32)
    half[:, 20:] = 1.0
    comp = SceneComposer(p, p.scenes[0], make_identity(mask=half))
    if case == "overlap":   # layouts keep captions and badge off the presenter: force both over it
        from dataclasses import replace

        comp.layout = replace(comp.layout, caption_box=(400, 250, 626, 353), badge_corner="bottom-right")
    speech = words_speech("intro words alpha point then beta point done")
    cues = [Cue(0.0, 1.5, ("intro words alpha",), tuple(speech.words[:3])),
            Cue(1.6, 3.0, ("point then beta point",), tuple(speech.words[3:7]))]
    crop = case in ("pip", "overlap")
    whole = list(comp.frames(iter(_moving_faces(30)), speech, cues, 34, face_is_crop=crop))
    made = list(comp.video_frames(iter(_moving_faces(30)), speech, cues, 34, face_is_crop=crop))
    assert len(made) == len(whole) == 34
    assert all(isinstance(f, np.ndarray if case == "full-remove" else PatchedFrame) for f in made)
    for i, (a, b) in enumerate(zip(whole, made)):
        assert np.array_equal(a, b if isinstance(b, np.ndarray) else b.rgb()), (case, i)
    assert not np.array_equal(whole[5], whole[6]) or case == "none"         # the presenter moves
    if case == "overlap":                                                   # caption and badge over the face
        x0, y0, x1, y1 = comp.layout.avatar_box
        bare = list(comp.frames(iter(_moving_faces(30)), speech, [], 34, face_is_crop=crop))
        assert not np.array_equal(whole[2][y0:y1, x0:x1], bare[2][y0:y1, x0:x1])
    if case in ("pip", "overlap"):
        assert made[5].patch.size < whole[5].size / 5                       # only its box is redrawn
        assert made[5].base is made[6].base                                 # one static picture per state
    if case == "none":
        assert made[5].patch.size == 0


def test_crossfade_takes_patched_frames():
    from avatar.video.mp4 import PatchedFrame, Still

    still = Still(np.full((4, 6, 3), 200, np.uint8))
    frames = [PatchedFrame(still, (2, 0), np.zeros((2, 2, 3), np.uint8)) for _ in range(4)]
    out = list(crossfade(np.zeros((4, 6, 3), np.uint8), iter(frames), 2))
    assert isinstance(out[0], np.ndarray) and out[0][3, 0, 0] == pytest.approx(67, abs=1)
    assert out[2] is frames[2]                                              # past the fade: passed through


@pytest.mark.parametrize("shape", ["circle", "rounded"])
def test_rim_blend_equals_blending_the_whole_box(shape):
    """A circle / rounded box is copied where opaque and mixed only along its rim: the same pixels
    (to rounding) as OpenCV's blend of the whole box, and the box outside the shape untouched."""
    from avatar.compose.composer import _Blend, _shape_alpha

    rng = np.random.default_rng(1)
    bw, bh = 120, 96
    alpha = _shape_alpha(shape, (bw, bh))
    rect = (4, 2, bw - 6, bh)
    scaled = rng.integers(0, 256, (rect[3] - rect[1], rect[2] - rect[0], 3), dtype=np.uint8)
    region = rng.integers(0, 256, (bh, bw, 3), dtype=np.uint8)
    rim = _Blend.of(alpha, rect)
    whole = _Blend(alpha, rect)
    assert rim.opaque is not None and whole.opaque is None
    a, b = region.copy(), region.copy()
    rim(a, scaled)
    whole(b, scaled)
    assert np.abs(a.astype(int) - b).max() <= 1
    outside = alpha <= 0
    assert outside.any() and (a[outside] == region[outside]).all()
    x0, y0, x1, y1 = rect
    inner = np.zeros_like(outside)
    inner[y0:y1, x0:x1] = alpha[y0:y1, x0:x1] >= 1
    assert (a[inner] == scaled[inner[y0:y1, x0:x1]]).all()
