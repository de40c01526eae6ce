"""Limits on every input, checked before any heavy work (the README's "Limits" table).

Each is far above what a real presentation needs and low enough that a hostile or broken
input (an alias bomb, a PNG header claiming 100000x100000 pixels, a 3-hour recording)
fails fast with a one-line AvatarError instead of eating memory or time.
"""
from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

from avatar.errors import AvatarError

MAX_SCRIPT_BYTES = 4 * 2 ** 20   # a script file (YAML, Markdown, text): ~600,000 words
MAX_YAML_DEPTH = 64              # nesting levels of mappings and lists
MAX_YAML_NODES = 200_000         # values after alias expansion (a 2000-scene deck has ~20,000)
MAX_SCENES = 2000                # scenes in one presentation
MAX_NARRATION_CHARS = 100_000    # characters of narration in one scene (~15,000 words, ~2 hours spoken)
MAX_IMAGE_PIXELS = 80_000_000    # pixels of a photo or slide image, read from its header (an 80 MP camera)
IMAGE_SIDE = 4096                # longest side an image is decoded to (JPEGs decode reduced directly)
MAX_RECORDING_SECONDS = 3600     # recorded narration (say --audio, voice.audio): bench/bench_memory.py


@contextlib.contextmanager
def open_image(path: str | Path, data: bytes | None = None, *, field: str | None = None, hint: str | None = None):
    """Pillow image of `path` (or of its bytes `data`), EXIF orientation applied, its longest side
    at most IMAGE_SIDE. Refused above MAX_IMAGE_PIXELS from the header, before decoding; an
    unreadable file is an AvatarError naming it (never a Pillow traceback)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                im = Image.open(path if data is None else io.BytesIO(data))
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                im = None
            if im is None or im.width * im.height > MAX_IMAGE_PIXELS:
                size = f" ({im.width}x{im.height})" if im is not None else ""
                raise AvatarError(f"the image has too many pixels{size}: at most {MAX_IMAGE_PIXELS / 1e6:.0f} "
                                  "megapixels", path=path, field=field, hint="resize it, e.g. to 4000 px wide")
            with im:
                if max(im.size) > IMAGE_SIDE:
                    im.draft(im.mode, (IMAGE_SIDE, IMAGE_SIDE))   # JPEG: decode at 1/2, 1/4 or 1/8 directly
                im.load()
                out = _eight_bit(ImageOps.exif_transpose(im))
                if max(out.size) > IMAGE_SIDE:
                    out.thumbnail((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.LANCZOS)
    except AvatarError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise AvatarError(f"not a readable image ({type(e).__name__})", path=path, field=field,
                          hint=hint or "use a JPEG, PNG or WebP image") from None
    yield out


def _eight_bit(im):
    """A 16-bit greyscale image (PNG, TIFF: Pillow's "I;16" and "I" modes) as 8-bit "L": Pillow's own
    convert() clips those values at 255 (a white picture). Other modes pass unchanged."""
    if not (im.mode.startswith("I;16") or im.mode == "I"):
        return im
    import numpy as np
    from PIL import Image

    a = np.asarray(im).astype(np.float64)
    top = 65535.0 if im.mode.startswith("I;16") or a.max(initial=0) > 255 else 255.0
    return Image.fromarray(np.clip(a * (255.0 / top) + 0.5, 0, 255).astype(np.uint8), "L")


def check_recording(seconds: float, path: str | Path) -> None:
    if seconds > MAX_RECORDING_SECONDS:
        raise AvatarError(f"the recording is {seconds / 60:.0f} minutes long: at most "
                          f"{MAX_RECORDING_SECONDS / 60:.0f} minutes are supported", path=path,
                          hint="split it into several scenes, each with its own voice.audio")
