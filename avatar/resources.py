"""The project's bundled resources: voices/, templates/ (and themes), assets/.

They live at the top of the source tree and are mapped into the package (avatar/voices,
avatar/templates, avatar/assets are links to them there, and real folders in the wheel),
so they are found with importlib.resources both in a checkout and in an installed wheel.
"""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def _bundled(name: str) -> Path:
    return Path(str(files("avatar") / name))


def voices_dir() -> Path:
    return _bundled("voices")


def templates_dir() -> Path:
    return _bundled("templates")


def themes_dir() -> Path:
    return templates_dir() / "themes"


def assets_dir() -> Path:
    return _bundled("assets")


def data_dir() -> Path:
    """Shipped model files (the lips checkpoint)."""
    return _bundled("data")


def default_photo() -> Path:
    """The bundled presenter photo: scikit-image's public-domain astronaut (Eileen Collins, NASA)."""
    import skimage  # light: only locates the package folder

    return Path(skimage.__file__).parent / "data" / "astronaut.png"


def package_version(dist: str) -> str:
    """An installed distribution's version ("-" when it is not installed): part of the keys of
    what the cache keeps (a new MediaPipe or onnxruntime gets new entries)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "-"
