"""Container tags that say, in every output, that the video is AI-generated."""
from __future__ import annotations

from avatar import __version__

TOOL = f"avatar-presenter {__version__}"


def metadata(title: str | None = None) -> dict[str, str]:
    """MP4 tags: title, and a comment/description/artist that label the video AI-generated."""
    note = (f"AI-generated video made with {TOOL}. The presenter is synthetic: "
            "a face animated from one photo, with a synthetic (or recorded) voice.")
    tags = {"comment": note, "description": note, "artist": f"{TOOL} (synthetic presenter)", "encoder": TOOL}
    return {"title": title, **tags} if title else tags
