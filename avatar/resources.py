"""Where the project's bundled resources live (voices/, templates/, assets/)."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def voices_dir() -> Path:
    return ROOT / "voices"


def templates_dir() -> Path:
    return ROOT / "templates"


def themes_dir() -> Path:
    return ROOT / "templates" / "themes"


def assets_dir() -> Path:
    return ROOT / "assets"


def default_photo() -> Path:
    """The bundled presenter photo: scikit-image's public-domain astronaut (Eileen Collins, NASA)."""
    import skimage  # light: only locates the package folder

    return Path(skimage.__file__).parent / "data" / "astronaut.png"
