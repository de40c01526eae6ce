"""Renderers: Identity + Motion -> Iterator of RGB uint8 frames.

    from avatar.renderers import get_renderer
    renderer = get_renderer(spec)            # spec: avatar.script.models.RendererSpec
    for frame in renderer.frames(identity, motion): ...
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from avatar.script.models import RendererSpec
    from avatar.types import Renderer


def get_renderer(spec: "RendererSpec", appearance=None) -> "Renderer":
    """'warp' -> WarpRenderer (CPU); 'diffusion' -> DiffusionRenderer on top of a WarpRenderer.

    appearance: a .face file (avatar face learn) whose real mouth interiors the warp paints."""
    from avatar.errors import AvatarError
    from avatar.renderers.warp import WarpRenderer

    name = getattr(spec, "name", spec)
    if name == "warp":
        return WarpRenderer(appearance=appearance)
    if name == "diffusion":
        from avatar.renderers.diffusion import DiffusionRenderer

        return DiffusionRenderer(spec, base=WarpRenderer(appearance=appearance))
    raise AvatarError(f"unknown renderer {name!r}", field="avatar.renderer.name", hint="use 'warp' or 'diffusion'")


__all__ = ["get_renderer"]
