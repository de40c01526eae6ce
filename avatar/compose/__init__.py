"""Composition: themes, slides, avatar layouts, burned captions, transitions.

    theme = load_theme(presentation.theme, base_dir)
    img = render_slide(slide, theme, (1280, 720))                     # static slide image
    comp = SceneComposer(presentation, scene, identity)                # layout boxes in comp.layout
    frames = comp.frames(face_frames, speech, cues, n_frames, face_is_crop=True)
    frames = crossfade(prev_last_frame, frames, n)                     # scene transition

Importing this package is cheap (numpy only); Pillow, OpenCV, Pygments and pypdfium2
are imported when used.
"""
from avatar.compose.composer import BADGE_TEXT, SceneComposer, compose, crossfade, reveal_times
from avatar.compose.layout import Layout, plan_layout
from avatar.compose.slides import render_slide
from avatar.compose.theme import Theme, contrast_ratio, list_themes, load_theme, parse_color, render_background

__all__ = ["SceneComposer", "compose", "crossfade", "reveal_times", "BADGE_TEXT", "Layout", "plan_layout",
           "render_slide", "Theme", "load_theme", "list_themes", "parse_color", "contrast_ratio",
           "render_background"]
