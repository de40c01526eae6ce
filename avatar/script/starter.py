"""`avatar init NAME`: a documented starter YAML template and a starter Markdown deck."""
from __future__ import annotations

import re
from pathlib import Path

from avatar.errors import AvatarError
from avatar.files import write_text

STARTER_YAML = """\
# {title}: a talking-presenter video. Render it with:  avatar render {name}.yaml
# Every key is optional except scenes. Relative paths are relative to this file's folder.
title: "{title}"
size: 1280x720            # or 16:9, 1080p, 9:16 (vertical), 1:1
fps: 25
badge: true               # a visible "AI-generated" mark on the video

avatar:
  # photo: me.jpg         # one photo of the presenter, facing the camera. Use only photos of
                          # people who agreed to it. Without a photo: the bundled astronaut.
  layout: pip             # pip (picture-in-picture), side, full, none (voice-over only)
  position: bottom-right  # pip corner
  size: 0.32              # pip height, fraction of the video height
  shape: rounded          # circle, rounded, rect
  # background: remove    # cut the presenter out, theme colour behind
  # still: true           # no head motion

voice:
  preset: joe             # a voice in voices/ (or a path to a preset .yaml)
  speed: 1.0              # 1.0 = natural
  # lexicon: {{GIF: jif}} # pronounce a word like another spelling

theme:
  name: default           # templates/themes/<name>.yaml
  # accent_color: "#ff7a00"
  # logo: logo.png

captions:
  burn: true              # draw captions into the video
  files: true             # also write {name}.srt and {name}.vtt

transition: crossfade     # or cut

scenes:
  - slide:
      layout: title
      title: "{title}"
      subtitle: A short explainer
    narration: >
      Hello! [pause 0.4s] In the next minute I will show you what this is about.

  - slide:
      layout: bullets
      title: Three points
      bullets: [The first point, The second point, The third point]
      reveal: true        # bullets appear one by one, at each [next] in the narration
    narration: >
      There are three things to know. [next] First, the first point.
      [next] Second, the second. [next] And third, the third.

  - layout: side          # this scene only: the presenter in a side panel
    voice: {{speed: 0.95}}  # this scene only: a little slower (other voice settings are kept)
    slide:
      layout: quote
      quote: Simple things should be simple.
      author: Alan Kay
    narration: Thanks for watching. [pause 0.5s] Bye!
    pause_after: 1.0      # seconds of silence at the end of the scene

# Other slide layouts: image (image: pic.png), image_text, two_columns (left:, right:),
# code (code:, language:), pdf (pdf: slides.pdf, page: 3), blank.
"""

STARTER_MD = """\
---
# {title}: a Markdown deck. Render it with:  avatar render {name}.md
# This front matter takes the same settings as a YAML template (voice, avatar, theme, ...).
title: "{title}"
badge: true
avatar:
  layout: pip             # photo: me.jpg  (only photos of people who agreed to it)
voice:
  speed: 1.0
---

# {title}
## A short explainer

<!-- Hello! Comments like this one are what the presenter says about the slide. -->

---

# Three points

- The first point
- The second point
- The third point

<!-- reveal: true -->

Notes: Everything from a Notes: line to the end of the slide is narration too.
[next] First, the first point. [next] Second, the second. [next] And third, the third.

---

# Before and after

- Slides in one tool
- A recording session

<!-- column -->

- One Markdown file
- One photo

<!-- The column marker splits a slide into two columns. -->

---

```python
print("code slides keep their language")
```

<!-- A fenced code block makes a code slide. -->

---

> Simple things should be simple.
> — Alan Kay

<!-- layout: side -->
<!-- Thanks for watching. [pause 0.5s] Bye! -->
"""


def write_starter(name: str, folder: Path) -> list[Path]:
    """Write NAME.yaml and NAME.md into `folder`; never overwrites (AvatarError if either exists)."""
    if not name or not re.fullmatch(r"[\w][\w.\- ]*", name) or name.endswith((".yaml", ".md")):
        raise AvatarError(f"bad name {name!r}", hint="use a plain file name without a suffix, e.g. my_talk")
    folder = Path(folder)
    targets = [folder / f"{name}.yaml", folder / f"{name}.md"]
    for t in targets:
        if t.exists():
            raise AvatarError("already exists", path=t, hint="choose another name or move the file away")
    folder.mkdir(parents=True, exist_ok=True)
    title = name.replace("_", " ").replace("-", " ").strip().capitalize() or name
    for target, text in zip(targets, (STARTER_YAML, STARTER_MD)):
        write_text(target, text.format(name=name, title=title))
    return targets
