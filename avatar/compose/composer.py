"""Scene composition: slide + avatar + captions (+ badge) -> video frames, streamed.

Per scene, the static parts (slide image per reveal step, avatar border) are drawn once,
and once per caption state the static picture with the caption and badge on it. Each
frame is that picture plus the avatar rectangle (the face pasted in, alpha blended only
where a shape or person mask needs it, caption and badge parts on top): for the encoder a
PatchedFrame (avatar.video.mp4), so only that rectangle is copied and converted to YUV
per frame. No full-frame work per frame except on video slides.
"""
from __future__ import annotations

import difflib
import re
from bisect import bisect_right
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from avatar.compose.captions import CaptionRenderer, blend_patch
from avatar.compose.layout import Layout, plan_layout
from avatar.compose.slides import render_slide
from avatar.compose.theme import Theme, font, load_theme, render_background
from avatar.video.mp4 import PatchedFrame, Still

BADGE_TEXT = "AI-generated"


# --------------------------------------------------------------------------- reveal
def _tokens(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


def reveal_times(slide, speech) -> list[float]:
    """When each bullet of `slide` appears (seconds from the scene start).

    Not a reveal slide: all 0. Bullet k (1-based) appears at the k-th [next] marker;
    bullets beyond the markers appear when the narration says their first words
    (fuzzy match of up to 3 words, searched forward from the previous bullet), else
    spread evenly over the time left. Times never decrease.
    """
    bullets = slide.reveal_items if slide is not None else []
    if not bullets or not slide.reveal:
        return [0.0] * len(bullets)
    marks = [t for kind, t in (speech.markers or []) if kind == "next"]
    words = [(_tokens(w.text), w.start) for w in speech.words]
    flat = [(tok, start) for toks, start in words for tok in toks[:1]]   # one token per word
    times: list[float | None] = []
    pos = 0
    for i, b in enumerate(bullets):
        if i < len(marks):
            times.append(marks[i])
            continue
        want = _tokens(b)[:3]
        found = None
        if want:
            target = " ".join(want)
            best = 0.0
            for j in range(pos, len(flat)):
                cand = " ".join(t for t, _ in flat[j:j + len(want)])
                r = difflib.SequenceMatcher(None, target, cand).ratio()
                if r > best and r >= 0.75:
                    best, found = r, j
                    if r == 1.0:
                        break
                elif found is not None and j > found + 2:
                    break
        if found is not None:
            times.append(flat[found][1])
            pos = found + 1
        else:
            times.append(None)
    # unmatched: spread over the time left before the next known time
    end = speech.duration
    out: list[float] = []
    prev = 0.0
    for i, t in enumerate(times):
        if t is None:
            nxt = next((x for x in times[i + 1:] if x is not None), end)
            gap_n = next((k for k, x in enumerate(times[i + 1:], 1) if x is not None), len(times) - i)
            t = prev + (max(nxt, prev) - prev) / (gap_n + 1)
        prev = max(prev, float(t))
        out.append(prev)
    return out


# --------------------------------------------------------------------------- transitions
def crossfade(prev_last_frame: np.ndarray | None, frames: Iterable[np.ndarray | PatchedFrame], n: int
              ) -> Iterator[np.ndarray | PatchedFrame]:
    """Blend the first n frames from `prev_last_frame` into `frames` (weights (i+1)/(n+1)); the rest pass through."""
    import cv2

    for i, f in enumerate(frames):
        if prev_last_frame is not None and i < n and prev_last_frame.shape == f.shape:
            if isinstance(f, PatchedFrame):
                f = f.rgb()
            a = (i + 1) / (n + 1)
            yield cv2.addWeighted(prev_last_frame, 1.0 - a, f, a, 0.0)
        else:
            yield f


# --------------------------------------------------------------------------- composer
class SceneComposer:
    """Composes one scene's video frames.

    SceneComposer(presentation, scene, identity, base_dir=None, theme=None)
      .layout        boxes (avatar_box None when the layout shows no presenter)
      .needs_face    whether frames() uses face frames at all
      .frames(face_frames, speech, cues, n_frames, face_is_crop=...) -> exactly n_frames RGB frames
    """

    def __init__(self, presentation, scene, identity=None, *, base_dir: Path | None = None,
                 theme: Theme | None = None, name: str | None = None):
        self.p, self.scene, self.identity = presentation, scene, identity
        if base_dir is None and presentation.source is not None:
            base_dir = Path(presentation.source).parent
        self.base_dir = base_dir
        self.theme = theme or load_theme(presentation.theme, base_dir)
        self.layout: Layout = plan_layout(presentation, scene, self.theme)
        self.spec = presentation.avatar_for(scene)
        self.name = name
        self._statics: dict[int | None, np.ndarray] = {}

    @property
    def needs_face(self) -> bool:
        return self.layout.avatar_box is not None

    # ---------------------------------------------------------------- static parts
    def background(self, revealed: int | None = None) -> np.ndarray:
        """The static frame for a reveal step: slide (or theme background), avatar border. Cached."""
        if revealed in self._statics:
            return self._statics[revealed]
        w, h = self.p.size
        lay = self.layout
        slide = self.scene.slide
        if slide is not None and lay.content_box is not None:
            img = np.array(render_slide(slide, self.theme, (w, h), content_box=lay.content_box,
                                        title_box=lay.title_box, revealed=revealed, base_dir=self.base_dir,
                                        name=self.name))
        else:
            img = render_background(self.theme.background, (w, h), self.theme.background_image)
        backdrop = self.spec.background
        if lay.avatar_box is not None and not isinstance(backdrop, str):   # an image or colour behind the person
            x0, y0, x1, y1 = lay.avatar_box
            img[y0:y1, x0:x1] = render_background(backdrop.color or "#000000", (x1 - x0, y1 - y0), backdrop.image)
        if lay.avatar_box is not None and lay.border > 0:
            self._draw_border(img)
        img.flags.writeable = False
        self._statics[revealed] = img
        return img

    def _draw_border(self, img: np.ndarray) -> None:
        """A ring of the accent colour around the avatar box (only the ring: the inside stays background)."""
        x0, y0, x1, y1 = self.layout.avatar_box
        b = self.layout.border
        ring = _shape_alpha(self.layout.shape, (x1 - x0 + 2 * b, y1 - y0 + 2 * b))
        ring[b:-b, b:-b] -= _shape_alpha(self.layout.shape, (x1 - x0, y1 - y0))
        a = np.clip(ring, 0.0, 1.0)[..., None]
        region = img[y0 - b:y1 + b, x0 - b:x1 + b]
        color = np.array(self.theme.accent_color, np.float32)
        region[:] = (region * (1 - a) + color * a).round().astype(np.uint8)

    def _badge(self):
        """(x, y, rgb, alpha) of the small 'AI-generated' mark."""
        from PIL import Image, ImageDraw

        w, h = self.p.size
        fs = max(9, int(round(13 * min(w, h) / 720)))
        fnt = font(self.theme.font_bold, fs)
        pad = fs // 2
        tw = int(fnt.getlength(BADGE_TEXT))
        im = Image.new("RGBA", (tw + 2 * pad, fs + 2 * pad), (0, 0, 0, 0))
        d = ImageDraw.Draw(im)
        d.rounded_rectangle((0, 0, im.width - 1, im.height - 1), radius=pad, fill=(0, 0, 0, 150))
        d.text((pad, pad - fs // 8), BADGE_TEXT, font=fnt, fill=(255, 255, 255, 255))
        arr = np.asarray(im)
        m = max(4, int(round(0.012 * min(w, h))))
        corner = self.layout.badge_corner
        x = m if corner.endswith("left") else w - im.width - m
        y = m if corner.startswith("top") else h - im.height - m
        return x, y, np.ascontiguousarray(arr[..., :3]), arr[..., 3].astype(np.float32) / 255.0

    # ---------------------------------------------------------------- avatar placement
    def shown_scale(self, face_is_crop: bool) -> float:
        """Video pixels per pixel of the presenter's photo in the avatar box (0 without one): above
        1 the box enlarges the photo, below it shows fewer pixels than the photo has."""
        ident = self.identity
        if ident is None or self.layout.avatar_box is None:
            return 0.0
        if face_is_crop:
            a, b, c, d = ident.face_box
            shape = (d - b, c - a)
        else:
            shape = ident.image.shape
        rw = self._source_rect(shape, face_is_crop)[2]
        x0, _, x1, _ = self.layout.avatar_box
        return (x1 - x0) / rw

    def _source_rect(self, frame_shape, face_is_crop: bool) -> tuple[float, float, float, float]:
        """(x, y, w, h) of the part of the face frames (the photo, or its face crop) that fills the box."""
        fh, fw = frame_shape[:2]
        x0, y0, x1, y1 = self.layout.avatar_box
        bw, bh = x1 - x0, y1 - y0
        ident = self.identity
        zoom, shift = self.layout.zoom, self.layout.shift
        if face_is_crop or ident is None:
            fb = (0.0, 0.0, float(fw), float(fh))
            zoom, shift = 1.0, 0.0
        else:
            ih, iw = ident.image.shape[:2]
            sx, sy = fw / iw, fh / ih
            a, b, c, d = ident.face_box
            fb = (a * sx, b * sy, c * sx, d * sy)
        face_h = fb[3] - fb[1]
        rh = face_h * zoom
        aspect = bw / bh
        if rh * aspect > fw and fw / aspect >= face_h * 1.1:
            rh = fw / aspect          # zoom in to cover the box rather than leave bars, if the face still fits
        if rh > fh and fh >= face_h * 1.1:
            rh = float(fh)
        rw = rh * aspect
        cx = (fb[0] + fb[2]) / 2
        cy = (fb[1] + fb[3]) / 2 + shift * face_h
        rx0, ry0 = cx - rw / 2, cy - rh / 2
        # slide the crop inside the source where it fits
        if rw <= fw:
            rx0 = min(max(rx0, 0.0), fw - rw)
        if rh <= fh:
            ry0 = min(max(ry0, 0.0), fh - rh)
        return rx0, ry0, rw, rh

    def _placement(self, frame_shape, face_is_crop: bool):
        """Integer source/destination rectangles and the alpha mask for the avatar box."""
        import cv2

        fh, fw = frame_shape[:2]
        x0, y0, x1, y1 = self.layout.avatar_box
        bw, bh = x1 - x0, y1 - y0
        ident = self.identity
        rx0, ry0, rw, rh = self._source_rect(frame_shape, face_is_crop)
        scale = bw / rw
        sx0, sy0 = max(0, int(round(rx0))), max(0, int(round(ry0)))
        sx1, sy1 = min(fw, int(round(rx0 + rw))), min(fh, int(round(ry0 + rh)))
        dx0 = min(bw - 1, max(0, int(round((sx0 - rx0) * scale))))
        dy0 = min(bh - 1, max(0, int(round((sy0 - ry0) * scale))))
        dx1 = min(bw, dx0 + max(1, int(round((sx1 - sx0) * scale))))
        dy1 = min(bh, dy0 + max(1, int(round((sy1 - sy0) * scale))))
        alpha = None
        if self.layout.mode == "pip" and self.layout.shape != "rect":
            alpha = _shape_alpha(self.layout.shape, (bw, bh))
        if self.spec.background != "keep" and ident is not None:
            from avatar.video.alpha import sharpen_edge

            pm = sharpen_edge(ident.person_mask.astype(np.float32))   # no fringe of the photo's background
            if face_is_crop:
                a, b, c, d = ident.face_box
                pm = cv2.resize(pm[b:d, a:c], (fw, fh), interpolation=cv2.INTER_LINEAR)
            elif pm.shape != (fh, fw):
                pm = cv2.resize(pm, (fw, fh), interpolation=cv2.INTER_LINEAR)
            full = np.zeros((bh, bw), np.float32)
            full[dy0:dy1, dx0:dx1] = cv2.resize(pm[sy0:sy1, sx0:sx1], (dx1 - dx0, dy1 - dy0),
                                                interpolation=cv2.INTER_LINEAR)
            alpha = full if alpha is None else alpha * full
        if alpha is None and (dx0, dy0, dx1, dy1) != (0, 0, bw, bh):
            # the source does not cover the box: soften its edges into the background
            alpha = np.zeros((bh, bw), np.float32)
            alpha[dy0:dy1, dx0:dx1] = 1.0
            k = max(3, (min(bw, bh) // 20) | 1)
            alpha = cv2.GaussianBlur(alpha, (k, k), 0) * (alpha > 0)
        blend = None if alpha is None else _Blend.of(alpha, (dx0, dy0, dx1, dy1))
        return (sx0, sy0, sx1, sy1), (dx0, dy0, dx1, dy1), blend

    def _paste(self, out: np.ndarray, face: np.ndarray, place, origin: tuple[int, int] = (0, 0)) -> None:
        """Paste the face into the avatar box of `out`, a frame or the part of one starting at `origin`."""
        import cv2

        (sx0, sy0, sx1, sy1), (dx0, dy0, dx1, dy1), blend = place
        x0, y0, x1, y1 = self.layout.avatar_box
        ox, oy = origin
        region = out[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
        src = face[sy0:sy1, sx0:sx1]
        dw, dh = dx1 - dx0, dy1 - dy0
        interp = cv2.INTER_AREA if dw < src.shape[1] else cv2.INTER_LINEAR
        scaled = cv2.resize(src, (dw, dh), interpolation=interp)
        if blend is None:
            region[dy0:dy1, dx0:dx1] = scaled
        else:
            blend(region, scaled)

    # ---------------------------------------------------------------- frames
    def frames(self, face_frames: Iterable[np.ndarray] | None, speech, cues=(), n_frames: int | None = None, *,
               face_is_crop: bool = False) -> Iterator[np.ndarray]:
        """Exactly n_frames (default: speech duration at the presentation's fps) RGB uint8 frames.

        face_frames: the renderer's frames (full photo, or the square face crop when
        face_is_crop); when they run out the last one is held; None shows the still photo.
        speech: word timings and [next] markers drive bullet reveal and caption highlight;
        None for a silent scene. cues: avatar.types.Cue captions (burned when the
        presentation's captions.burn is on).
        """
        return self._frames(face_frames, speech, cues, n_frames, face_is_crop, patched=False)

    def video_frames(self, face_frames: Iterable[np.ndarray] | None, speech, cues=(), n_frames: int | None = None,
                     *, face_is_crop: bool = False) -> Iterator[np.ndarray | PatchedFrame]:
        """The pictures of frames(), made for write_mp4: while the slide step and the caption stay
        the same, each frame is a PatchedFrame, the shared static picture (slide, captions, badge;
        its YUV made once) plus the presenter's rectangle, so no full frame is copied or converted
        per frame. Plain RGB arrays where the whole picture moves (a video slide, a full-frame
        presenter) or the size is odd (never from a Presentation: its sizes are even)."""
        return self._frames(face_frames, speech, cues, n_frames, face_is_crop, patched=True)

    def _frames(self, face_frames, speech, cues, n_frames, face_is_crop: bool, patched: bool
                ) -> Iterator[np.ndarray | PatchedFrame]:
        """frames() (patched False: every frame composed whole) or video_frames() (patched True)."""
        fps = float(self.p.fps)
        if speech is None:   # a silent scene (slide with a duration only)
            from avatar.types import Speech

            if n_frames is None:
                raise ValueError("frames: give n_frames when there is no speech")
            speech = Speech(np.zeros(0, np.float32), 16000)
        if n_frames is None:
            n_frames = max(1, int(round(speech.duration * fps)))
        slide = self.scene.slide
        times = reveal_times(slide, speech) if (slide is not None and slide.reveal) else []
        caps = self.p.captions
        cues = list(cues)
        capr = None
        if self.layout.caption_box is not None and cues:
            capr = CaptionRenderer(self.theme, self.layout.caption_box, min(self.p.size), position=caps.position,
                                   highlight=caps.highlight)
        starts = [c.start for c in cues]
        badge = self._badge() if self.p.badge else None
        face_it = iter(face_frames) if (face_frames is not None and self.needs_face) else None
        face = None
        if self.needs_face and face_it is None and self.identity is not None:
            face = self.identity.image
            if face_is_crop:
                a, b, c, d = self.identity.face_box
                face = face[b:d, a:c]
        place = None
        clip = None
        if slide is not None and slide.layout == "video" and self.layout.content_box is not None:
            from avatar.compose.video_slide import open_clip

            clip = open_clip(slide, self.layout, fps, self.p.size)
        w, h = self.p.size
        patched = patched and clip is None and not (w & 1 or h & 1)
        region = None   # what changes from frame to frame: the avatar box, widened to even coordinates
        if self.layout.avatar_box is not None:
            x0, y0, x1, y1 = self.layout.avatar_box
            region = (x0 & ~1, y0 & ~1, min(w, x1 + (x1 & 1)), min(h, y1 + (y1 & 1)))
            patched = patched and region != (0, 0, w, h)   # the presenter fills the frame: nothing static
        state, still = None, None
        for i in range(n_frames):
            t = i / fps
            revealed = bisect_right(times, t) if times else None
            if face_it is not None:
                nxt = next(face_it, None)
                if nxt is None:
                    face_it = None
                else:
                    face = nxt
            overlays = []   # drawn over everything, in this order: the caption, the badge
            cue = None
            if capr is not None:
                k = bisect_right(starts, t) - 1
                if k >= 0 and t < cues[k].end:
                    cue = (k, capr.active_word(cues[k], t))
                    overlays.append(capr.patch(k, cues[k], cue[1]))
            if badge is not None:
                overlays.append(badge)
            show_face = face is not None and self.layout.avatar_box is not None
            if show_face and place is None:
                place = self._placement(face.shape, face_is_crop)
            if not patched:
                out = self.background(revealed).copy()
                if clip is not None:
                    clip.paste(out)
                if show_face:
                    self._paste(out, face, place)
                for o in overlays:
                    blend_patch(out, *o)
                yield out
                continue
            if (revealed, cue) != state:   # a new static picture: slide step, caption, badge
                img = self.background(revealed).copy()
                for o in overlays:
                    blend_patch(img, *o)
                img.flags.writeable = False
                state, still = (revealed, cue), Still(img)
            if not show_face:
                yield PatchedFrame(still, (0, 0), still.rgb[:0, :0])
                continue
            rx0, ry0, rx1, ry1 = region
            patch = self.background(revealed)[ry0:ry1, rx0:rx1].copy()
            self._paste(patch, face, place, origin=(rx0, ry0))
            for x, y, rgb, a in overlays:   # the parts of the caption and badge over the presenter
                blend_patch(patch, x - rx0, y - ry0, rgb, a)
            yield PatchedFrame(still, (rx0, ry0), patch)


class _Blend:
    """The presenter's alpha over its box, applied to each frame. Where the mask is mostly 0 or 1
    (a circle or rounded box: only its rim is partly transparent), the opaque part is copied and
    only the rim's pixels are mixed, a third of blending the whole box; a soft mask (the person
    cut out of the photo's background) is blended whole with OpenCV."""

    SPARSE = 0.1   # at most this share of the pasted rectangle partly transparent: copy + mix the rim

    def __init__(self, alpha, rect, opaque=None, rim=None):
        self.alpha, self.rect, self.opaque, self.rim = alpha, rect, opaque, rim
        self.inv = None if opaque is not None else np.ascontiguousarray(1.0 - alpha)

    @classmethod
    def of(cls, alpha: np.ndarray, rect: tuple[int, int, int, int]) -> "_Blend":
        dx0, dy0, dx1, dy1 = rect
        a = alpha[dy0:dy1, dx0:dx1]
        part = (a > 0) & (a < 1)
        if part.sum() > cls.SPARSE * part.size:
            return cls(alpha, rect)
        ys, xs = np.nonzero(part)
        opaque = (a >= 1).astype(np.uint8)   # cv2.copyTo's mask: 20-50x numpy's masked copy
        return cls(alpha, rect, opaque, (ys, xs, a[ys, xs][:, None]))

    def __call__(self, region: np.ndarray, scaled: np.ndarray) -> None:
        """Mix `scaled` (the pasted rectangle's pixels) into `region` (the whole box) in place."""
        import cv2

        dx0, dy0, dx1, dy1 = self.rect
        if self.opaque is None:
            placed = region.copy()
            placed[dy0:dy1, dx0:dx1] = scaled
            region[:] = cv2.blendLinear(placed, region, self.alpha, self.inv)
            return
        sub = region[dy0:dy1, dx0:dx1]
        ys, xs, w = self.rim
        mixed = scaled[ys, xs] * w + sub[ys, xs] * (1.0 - w)
        if cv2.copyTo(scaled, self.opaque, sub) is not sub:   # in place into the view, as long as
            raise AssertionError("cv2.copyTo did not write into the presenter's box")   # shapes match
        sub[ys, xs] = (mixed + 0.5).astype(np.uint8)


def _shape_alpha(shape: str, size: tuple[int, int]) -> np.ndarray:
    """Anti-aliased (h, w) float32 mask of a circle / rounded rectangle / rectangle."""
    from PIL import Image, ImageDraw

    w, h = size
    if shape == "rect":
        return np.ones((h, w), np.float32)
    ss = 4
    im = Image.new("L", (w * ss, h * ss), 0)
    d = ImageDraw.Draw(im)
    if shape == "circle":
        d.ellipse((0, 0, w * ss - 1, h * ss - 1), fill=255)
    else:
        d.rounded_rectangle((0, 0, w * ss - 1, h * ss - 1), radius=int(min(w, h) * ss * 0.12), fill=255)
    im = im.resize((w, h), Image.Resampling.LANCZOS)
    return np.asarray(im, np.float32) / 255.0


def compose(presentation, scene, identity, face_frames, speech, cues=(), n_frames: int | None = None, *,
            face_is_crop: bool = False, base_dir: Path | None = None) -> Iterator[np.ndarray]:
    """One-call form of SceneComposer(...).frames(...)."""
    return SceneComposer(presentation, scene, identity, base_dir=base_dir).frames(
        face_frames, speech, cues, n_frames, face_is_crop=face_is_crop)
