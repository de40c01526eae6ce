"""Talking-avatar presentation generator: script + one photo -> narrated explainer video.

The Python API (heavy stages are imported only when called):

    import avatar
    deck = avatar.load("talk.yaml")          # or avatar.Presentation(...) built in code
    avatar.render(deck, "talk.mp4")
    avatar.say("Hello!", face="me.jpg", out="hello.mp4")
"""
from __future__ import annotations

__version__ = "0.1.0"

from avatar.errors import AvatarError  # noqa: F401  (light)


def __getattr__(name: str):
    # Lazy re-exports keep `import avatar` (and `avatar --help`) cheap.
    if name in ("Presentation", "Scene", "Slide", "VoiceSpec", "AvatarSpec", "CaptionSpec", "ThemeSpec", "RendererSpec"):
        from avatar.script import models
        return getattr(models, name)
    if name == "load":
        from avatar.script import load
        return load
    if name in ("render", "say", "speak"):
        from avatar import pipeline
        return getattr(pipeline, name)
    raise AttributeError(f"module 'avatar' has no attribute {name!r}")
