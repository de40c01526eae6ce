"""Talking-avatar presentation generator: script + one photo -> narrated explainer video.

The Python API (heavy stages are imported only when called; see avatar.api):

    import avatar
    deck = avatar.load("talk.yaml")          # or avatar.Presentation(...) built in code
    avatar.render(deck, "talk.mp4")
    avatar.say("Hello!", face="me.jpg", out="hello.mp4")
    presenter = avatar.Presenter(face="me.jpg"); clip = presenter.say("Hi.")
"""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version as _version

from avatar.errors import AvatarError  # noqa: F401  (light)

try:
    __version__ = _version("avatar-presenter")
except PackageNotFoundError:   # running from a source tree that was never installed
    __version__ = "0+source"

_MODELS = ("Presentation", "Scene", "Slide", "VoiceSpec", "AvatarSpec", "CaptionSpec", "ThemeSpec", "RendererSpec")
_API = ("load", "render", "say", "speak", "plan", "batch", "list_voices", "Presenter", "Clip", "Result", "VoiceInfo")


def __getattr__(name: str):
    # Lazy re-exports keep `import avatar` (and `avatar --help`) cheap.
    if name in _MODELS:
        from avatar.script import models
        value = getattr(models, name)
    elif name in _API:
        from avatar import api
        value = getattr(api, name)
    elif name == "Progress":
        from avatar.progress import Progress as value
    else:
        raise AttributeError(f"module 'avatar' has no attribute {name!r}")
    globals()[name] = value
    return value


__all__ = ["AvatarError", "Progress", "__version__", *_MODELS, *_API]
