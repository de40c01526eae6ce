"""Script loaders: YAML templates, Markdown decks, plain text, starters, shipped samples."""
from __future__ import annotations

from pathlib import Path

import pytest

from avatar.errors import AvatarError
from avatar.resources import assets_dir, templates_dir
from avatar.script import from_text, load
from avatar.script.models import Presentation
from avatar.script.starter import write_starter

PNG = bytes.fromhex(  # a valid 1x1 PNG: loaders only check that files exist
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(PNG)
    return path


def error_of(path: Path) -> str:
    with pytest.raises(AvatarError) as info:
        load(path)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


# ----------------------------------------------------------------------------- YAML
def test_yaml_full_template(tmp_path):
    png(tmp_path / "pics" / "me.png")
    png(tmp_path / "slide.png")
    f = write(tmp_path / "talk.yaml", """\
title: My talk
size: 1080p
theme: dark
voice: {preset: joe, speed: 1.1}
avatar:
  photo: pics/me.png
  layout: pip
scenes:
  - slide: {layout: title, title: Hello, subtitle: World}
    narration: Hi there. [pause 0.5s] Welcome.
  - slide:
      layout: image_text
      image: slide.png
      bullets: [one, two]
      reveal: true
    narration: |
      First [next] one.
      Then [next] two.
""")
    p = load(f)
    assert isinstance(p, Presentation)
    assert p.title == "My talk" and p.size == (1920, 1080)
    assert p.theme.name == "dark"
    assert p.source == f.resolve()
    assert p.avatar.photo == (tmp_path / "pics" / "me.png").resolve()
    assert p.scenes[1].slide.image == (tmp_path / "slide.png").resolve()
    assert p.scenes[1].slide.bullets == ["one", "two"]
    assert p.scenes[1].narration.startswith("First [next] one.\n")
    assert p.scenes[0].voice is None and p.scenes[0].avatar is None


def test_scene_overrides_merge_and_fields_set(tmp_path):
    f = write(tmp_path / "t.yaml", """\
voice: {preset: joe, speed: 1.2}
avatar: {layout: side, size: 0.5, renderer: {name: warp, steps: 3}}
scenes:
  - narration: plain
  - narration: slower
    voice: {noise_scale: 0.4}
    avatar: {renderer: {strength: 0.5}}
  - narration: shorthand
    layout: full
""")
    p = load(f)
    v = p.scenes[1].voice
    assert (v.preset, v.speed, v.noise_scale) == ("joe", 1.2, 0.4)
    assert v.model_fields_set == {"preset", "speed", "noise_scale"}   # keys written somewhere
    a = p.scenes[1].avatar
    assert (a.layout, a.size, a.renderer.steps, a.renderer.strength) == ("side", 0.5, 3, 0.5)
    assert a.renderer.model_fields_set == {"name", "steps", "strength"}
    assert p.scenes[0].voice is None and p.voice_for(p.scenes[0]).speed == 1.2
    s2 = p.scenes[2].avatar
    assert s2.layout == "full" and s2.size == 0.5      # shorthand merges over the presentation avatar
    assert "layout" in s2.model_fields_set


def test_scene_layout_shorthand_for_slide_layout(tmp_path):
    f = write(tmp_path / "t.yaml", "scenes:\n  - narration: hi\n    layout: bullets\n    slide: {bullets: [a]}\n")
    s = load(f).scenes[0]
    assert s.slide.layout == "bullets" and s.avatar is None


@pytest.mark.parametrize("slide, layout", [
    ("{title: T, bullets: [a, b]}", "bullets"),          # was drawn as a title slide, without its bullets
    ("{title: T, subtitle: S}", "title"),
    ("{title: T, text: words}", "title"),                # the title layout shows text as its subtitle
    ("{title: T, left: [a], right: [b]}", "two_columns"),
    ("{image: slide.png}", "image"),
    ("{image: slide.png, text: words}", "image_text"),
    ("{quote: Q, author: A}", "quote"),
    ("{code: 'x = 1'}", "code"),
    ("{title: T}", "title"),
])
def test_a_slide_without_layout_takes_the_one_its_content_needs(tmp_path, slide, layout):
    png(tmp_path / "slide.png")
    f = write(tmp_path / "t.yaml", f"scenes:\n  - narration: hi\n    slide: {slide}\n")
    s = load(f).scenes[0].slide
    assert s.layout == layout
    assert type(s).model_validate_json(s.model_dump_json()) == s   # a plan's round trip keeps it


def test_shorthands_and_empty_sections(tmp_path):
    (tmp_path / "voices").mkdir()
    preset = write(tmp_path / "voices" / "mine.yaml", "speed: 1.0\n")
    f = write(tmp_path / "t.yaml", "theme: dark\nvoice:\navatar:\nscenes:\n"
                                    "  - narration: hi\n    voice: voices/mine.yaml\n")
    p = load(f)
    assert p.theme.name == "dark" and p.voice.preset == "joe" and p.avatar.layout == "pip"
    assert p.scenes[0].voice.preset == str(preset.resolve())      # a path-like preset is resolved


def test_extends_chain_paths_and_merge(tmp_path):
    png(tmp_path / "base" / "pics" / "me.png")
    png(tmp_path / "talk" / "slide.png")
    write(tmp_path / "base" / "base.yaml", """\
title: Base
avatar: {photo: pics/me.png, layout: side, size: 0.4}
voice: {speed: 1.1, lexicon: {GIF: jif}}
scenes:
  - narration: from the base
  - narration: also from the base
""")
    write(tmp_path / "base" / "mid.yaml", "extends: base.yaml\nvoice: {lexicon: {SQL: sequel}}\n")
    f = write(tmp_path / "talk" / "t.yaml", """\
extends: ../base/mid.yaml
avatar: {layout: pip}
scenes:
  - slide: {layout: image, image: slide.png}
    narration: hi
""")
    p = load(f)
    assert p.title == "Base"
    assert p.avatar.photo == (tmp_path / "base" / "pics" / "me.png").resolve()   # parent's folder
    assert (p.avatar.layout, p.avatar.size) == ("pip", 0.4)                        # maps merge
    assert p.voice.lexicon == {"GIF": "jif", "SQL": "sequel"}
    assert [s.narration for s in p.scenes] == ["hi"]                                # lists replaced
    assert p.scenes[0].slide.image == (tmp_path / "talk" / "slide.png").resolve()
    # without scenes of its own, a child keeps the parent's
    g = write(tmp_path / "talk" / "u.yaml", "extends: ../base/base.yaml\ntitle: Child\n")
    assert [s.narration for s in load(g).scenes] == ["from the base", "also from the base"]


def test_extends_errors(tmp_path):
    write(tmp_path / "a.yaml", "title: a\nextends: b.yaml\n")
    write(tmp_path / "b.yaml", "extends: a.yaml\nscenes: [{narration: hi}]\n")
    msg = error_of(tmp_path / "a.yaml")
    assert msg.startswith(f"{tmp_path / 'b.yaml'}:1: extends: cycle: a.yaml -> b.yaml -> a.yaml")
    f = write(tmp_path / "c.yaml", "title: c\n\nextends: nope.yaml\nscenes: [{narration: hi}]\n")
    msg = error_of(f)
    assert msg.startswith(f"{f}:3: extends: file not found") and "nope.yaml" in msg
    # an error inside the parent names the parent's file and line
    write(tmp_path / "p.yaml", "title: p\nvoice:\n  sped: 2\n")
    f = write(tmp_path / "d.yaml", "extends: p.yaml\nscenes: [{narration: hi}]\n")
    assert error_of(f).startswith(f"{tmp_path / 'p.yaml'}:3: voice.sped: unknown key (did you mean 'speed'?")


@pytest.mark.parametrize("text, line, expected", [
    ("title: x\nscenes:\n  - narration: hi\n    slide: {layout: bulets}\n", 4,
     "scenes[0].slide.layout: unknown value 'bulets' (did you mean 'bullets'?)"),
    ("title: x\nscenes:\n  - narration: hi\n\n  - narations: hello\n", 5,
     "scenes[1].narations: unknown key (did you mean 'narration'?)"),
    ("title: x\nscene:\n  - narration: hi\n", 2, "scene: unknown key (did you mean 'scenes'?"),
    ("title: x\nfps: fast\nscenes:\n  - narration: hi\n", 2, "fps: input should be a valid integer"),
    ("title: x\nscenes:\n  - narration: hi\n    pause_after: 99\n", 4, "scenes[0].pause_after: input should be less"),
    ("title: x\nscenes:\n  - narration: hi\n  - pause_after: 1\n", 4, "scenes[1]: scene is empty"),
    ("title: x\nscenes: []\n", 2, "scenes: no scenes"),
    ("title: x\n", 1, "scenes: no scenes"),
    ("title: x\nscenes:\n  - narration: hi\n    layout: sid\n", 4,
     "scenes[0].layout: unknown value 'sid' (did you mean 'side'?)"),
    ("title: x\nscenes:\n  - narration: hi\n   slide: 3\n", 4, "YAML syntax error"),
    ("title: x\nscenes:\n  - narration: hi\n  - narration: !!python/object/apply:os.system [ls]\n", 4,
     "YAML tags are not allowed (!!python/object/apply:os.system)"),
    ("title: !shout x\nscenes: [{narration: hi}]\n", 1, "YAML tags are not allowed (!shout)"),
    ("title: x\ntitle: y\nscenes: [{narration: hi}]\n", 2, "YAML syntax error"),
    ("title: x\nscenes:\n  - narration: |\n      fine\n      broken [pause 2 parsecs]\n", 5,
     "scenes[0].narration: bad duration in [pause 2 parsecs]"),
    ("title: x\nscenes:\n  - narration: hi [wave]\n", 3, "scenes[0].narration: unknown markup [wave]"),
    ("title: x\nscenes:\n  - slide: {layout: bullets, bullets: [a], reveal: true}\n    narration: a [next] b [next]\n",
     4, "scenes[0].narration: 2 [next] markers but only 1 bullet"),
    ("title: x\nscenes:\n  - narration: hi\n    slide:\n      layout: title\n      bullets: [a, b]\n", 4,
     "scenes[0].slide: a title slide does not show `bullets`: give the slide a layout that does (bullets, "
     "image_text), or remove `bullets`"),
    ("title: x\nscenes:\n  - narration: hi\n    slide: {code: 'x = 1', bullets: [a]}\n", 4,
     "scenes[0].slide: a code slide does not show `bullets`"),
    ("- just\n- a list\n", 1, "the top level must be a mapping"),
    ("", 1, "the file is empty"),
])
def test_yaml_errors_name_file_line_field(tmp_path, text, line, expected):
    f = write(tmp_path / "talk.yaml", text)
    msg = error_of(f)
    assert msg.startswith(f"{f}:{line}: {expected}"), msg


def test_missing_files_are_named(tmp_path):
    f = write(tmp_path / "t.yaml", "avatar:\n  photo: me.jpg\nscenes: [{narration: hi}]\n")
    msg = error_of(f)
    assert msg.startswith(f"{f}:2: avatar.photo: file not found: {tmp_path / 'me.jpg'}")
    f = write(tmp_path / "u.yaml", "scenes:\n  - narration: hi\n  - narration: yo\n    slide:\n"
                                    "      layout: pdf\n      pdf: deck.pdf\n")
    assert error_of(f).startswith(f"{f}:6: scenes[1].slide.pdf: file not found")
    f = write(tmp_path / "v.yaml", "scenes:\n  - voice: {engine: recorded, audio: take1.wav}\n"
                                    "    narration: hi\n")
    assert error_of(f).startswith(f"{f}:2: scenes[0].voice.audio: file not found")
    f = write(tmp_path / "w.yaml", "theme: {logo: logo.png}\nscenes: [{narration: hi}]\n")
    assert error_of(f).startswith(f"{f}:1: theme.logo: file not found")


def test_unreadable_script(tmp_path):
    assert error_of(tmp_path / "nope.yaml") == f"{tmp_path / 'nope.yaml'}: script file not found (check the path)"
    assert "is a folder" in error_of(tmp_path)
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9".encode("latin-1"))
    assert "not UTF-8" in error_of(bad)


# ----------------------------------------------------------------------------- Markdown
DECK = """\
---
title: Deck
voice: {speed: 1.2}
avatar:
  photo: me.png
---

# Welcome
## A subtitle

<!-- Hello there. -->

---

# Picture

![a red square](img/a.png)

Notes: Look at this.
And this [pause 0.2s] too.

---

# Mixed

![a](img/a.png)

- one
* two
1. three

---

```python
x = 1
---
y = 2
```
<!-- Code. -->

---

> Simple things should be simple.
> — Alan Kay

<!-- layout: side -->
<!-- voice: {speed: 0.9} -->
<!-- Quote. -->

---

# Columns

- left one
- left two

<!-- column -->

- right one

---

# Just a title

---

Some plain **text**.
<!-- pause_after: 2 -->
"""


def test_markdown_deck(tmp_path):
    png(tmp_path / "me.png")
    png(tmp_path / "img" / "a.png")
    p = load(write(tmp_path / "deck.md", DECK))
    assert p.title == "Deck" and p.voice.speed == 1.2
    assert p.avatar.photo == (tmp_path / "me.png").resolve()
    layouts = [s.slide.layout for s in p.scenes]
    assert layouts == ["title", "image", "image_text", "code", "quote", "two_columns", "title", "bullets"]
    s = p.scenes
    assert (s[0].slide.title, s[0].slide.subtitle, s[0].narration) == ("Welcome", "A subtitle", "Hello there.")
    assert s[1].slide.image == (tmp_path / "img" / "a.png").resolve()
    assert s[1].narration == "Look at this.\nAnd this [pause 0.2s] too."
    assert s[2].slide.bullets == ["one", "two", "three"]
    assert (s[3].slide.code, s[3].slide.language) == ("x = 1\n---\ny = 2", "python")
    assert (s[4].slide.quote, s[4].slide.author) == ("Simple things should be simple.", "Alan Kay")
    assert s[4].avatar.layout == "side" and s[4].narration == "Quote."
    assert s[4].voice.speed == 0.9 and s[4].voice.model_fields_set == {"speed"}
    assert (s[5].slide.left, s[5].slide.right) == (["left one", "left two"], ["right one"])
    assert s[6].narration == "" and s[6].slide.title == "Just a title"
    assert s[7].slide.text == "Some plain text." and s[7].pause_after == 2.0
    assert p.source == (tmp_path / "deck.md").resolve()


def test_markdown_without_front_matter_takes_first_title(tmp_path):
    p = load(write(tmp_path / "x.markdown", "# Hello deck\n\n<!-- hi -->\n---\n\n---\n- a\n<!-- reveal: true -->\n"))
    assert p.title == "Hello deck" and len(p.scenes) == 2       # empty slides are skipped
    assert p.scenes[1].slide.reveal and p.scenes[1].slide.bullets == ["a"]


def test_markdown_notes_inside_a_longer_fence_are_code(tmp_path):
    # a ``` line inside a ```` fence neither closes it nor starts slide notes
    deck = "# Code\n\n````md\n```\nNotes: shown, not spoken\n```\n````\n\nNotes: spoken\n---\n# Next\n"
    p = load(write(tmp_path / "fence.md", deck))
    assert p.scenes[0].slide.code == "```\nNotes: shown, not spoken\n```"
    assert p.scenes[0].narration == "spoken" and len(p.scenes) == 2


def test_markdown_extends_yaml(tmp_path):
    write(tmp_path / "base.yaml", "voice: {speed: 1.3}\nscenes: [{narration: from base}]\n")
    p = load(write(tmp_path / "d.md", "---\nextends: base.yaml\n---\n# Slide\n<!-- hi -->\n"))
    assert p.voice.speed == 1.3 and [sc.narration for sc in p.scenes] == ["hi"]


@pytest.mark.parametrize("text, line, expected", [
    ("# A\n\n---\n\n# B\n\n<!-- layout: sid -->\n", 7, "scenes[1].layout: unknown value 'sid' (did you mean 'side'?)"),
    ("# A\n\n---\n\n# B\n\n![x](nope.png)\n", 7, "scenes[1].slide.image: file not found"),
    ("# A\n\n---\n# B\n\nNotes: hello\nthere [pause zz] ok\n", 7, "scenes[1].narration: bad duration in [pause zz]"),
    ("# A\n<!--\n  multi line\n  note [pause 1h]\n-->\n", 4, "scenes[0].narration: bad duration in [pause 1h]"),
    ("---\ntitle: T\nfoo: 1\n---\n# A\n", 3, "foo: unknown key"),
    ("---\ntitle: T\n", 1, "the front matter is not closed"),
    ("---\ntitle: T\n---\n\n", 4, "no slides"),
    ("# A\n<!-- pause_after: lots -->\n", 2, "scenes[0].pause_after: input should be a valid number"),
    ("# A\n\n![x](https://example.com/a.png)\n", 3, "scenes[0].slide.image: remote image"),
    ("---\nscenes: []\n---\n# A\n", 2, "scenes: scenes come from the slides"),
])
def test_markdown_errors(tmp_path, text, line, expected):
    f = write(tmp_path / "deck.md", text)
    msg = error_of(f)
    assert msg.startswith(f"{f}:{line}: {expected}"), msg


# ----------------------------------------------------------------------------- plain text
def test_plain_text(tmp_path):
    f = write(tmp_path / "notes.txt", "\n\nHello [pause 2s] one.\n\nTwo\nlines here.\n\n\n")
    p = load(f)
    assert [s.narration for s in p.scenes] == ["Hello [pause 2s] one.", "Two lines here."]
    assert all(s.slide is None for s in p.scenes) and p.source == f.resolve()
    f = write(tmp_path / "bad.text", "Fine.\n\nStill fine\nbut [bad] here.\n")
    assert error_of(f).startswith(f"{f}:4: scenes[1].narration: unknown markup [bad]")
    assert error_of(write(tmp_path / "empty.txt", " \n\n")).startswith(f"{tmp_path / 'empty.txt'}:1: no text to speak")


def test_from_text():
    p = from_text("Hello there.\n\nSecond [pause 0.5s] scene.")
    assert [s.narration for s in p.scenes] == ["Hello there.", "Second [pause 0.5s] scene."]
    assert p.source is None and p.scenes[0].slide is None
    with pytest.raises(AvatarError, match=r"^<text>:3: scenes\[1\].narration: bad duration"):
        from_text("ok\n\n[pause forever]")
    with pytest.raises(AvatarError, match="no text to speak"):
        from_text("   ")


# ----------------------------------------------------------------------------- starter and shipped files
def test_starter_files_load_back(tmp_path):
    paths = write_starter("my_talk", tmp_path / "new")
    assert [p.name for p in paths] == ["my_talk.yaml", "my_talk.md"]
    for path in paths:
        p = load(path)
        assert p.title == "My talk" and len(p.scenes) >= 3
    with pytest.raises(AvatarError, match="already exists"):
        write_starter("my_talk", tmp_path / "new")
    with pytest.raises(AvatarError, match="bad name"):
        write_starter("../evil", tmp_path)
    assert sorted(q.name for q in (tmp_path / "new").iterdir()) == ["my_talk.md", "my_talk.yaml"]


SHIPPED = sorted(templates_dir().glob("*.yaml")) + sorted(templates_dir().glob("*.md")) \
    + sorted((assets_dir() / "samples").glob("*"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_scripts_load(path):
    p = load(path)
    assert p.scenes and all(s.narration.strip() or s.slide for s in p.scenes)


def test_demo_template_shape():
    p = load(templates_dir() / "demo.yaml")
    layouts = {s.slide.layout for s in p.scenes}
    assert {"title", "bullets", "two_columns", "code", "quote"} <= layouts
    assert p.avatar.photo is None and p.badge
    bullets = next(s for s in p.scenes if s.slide.layout == "bullets")
    assert bullets.slide.reveal and bullets.narration.count("[next]") == len(bullets.slide.bullets)
    assert len(SHIPPED) >= 4


def test_long_text_is_text_not_a_file_name():
    # longer than a file name may be (ENAMETOOLONG from stat): still the text to speak
    from avatar.api import _script_or_text

    text = "This sentence is spoken, not opened as a file. " * 20
    deck = _script_or_text(text)
    assert len(deck.scenes) >= 1 and "opened as a file" in deck.scenes[0].narration
    assert _script_or_text("a\x00b").scenes    # NUL: not a path either


def test_a_deck_without_any_narration_warns_that_nobody_speaks(tmp_path):
    """A Markdown deck without speaker notes renders silent slides: planning it warns, naming the
    file and where narration goes; a deck with notes, or one that asks for silence (a pause, a
    scene's own duration), does not."""
    import warnings

    from avatar.build.plan import plan
    from avatar.script import load

    cases = {"silent.md": ("# One\n\nText.\n\n---\n\n# Two\n\nMore text.\n", True),
             "notes.md": ("# One\n\nText.\n\n<!-- Hello there. -->\n\n---\n\n# Two\n\nMore.\n", False),
             "pause.yaml": ('scenes:\n  - slide: {title: A}\n    narration: "[pause 1s]"\n', False),
             "timed.yaml": ("scenes:\n  - slide: {title: A}\n    duration: 2\n", False)}
    for name, (text, warned) in cases.items():
        p = tmp_path / name
        p.write_text(text)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            plan(load(p))
        msgs = [str(w.message) for w in seen if "never speaks" in str(w.message)]
        assert bool(msgs) is warned, (name, msgs)
        if warned:
            assert msgs[0].startswith(f"{p}: ") and "speaker notes" in msgs[0]
