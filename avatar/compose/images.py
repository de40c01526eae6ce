"""Image loading and fitting (Pillow), PDF page rendering (pypdfium2)."""
from __future__ import annotations

from pathlib import Path

from avatar.errors import AvatarError


def load_image(path: Path, *, field: str = "image"):
    """Open a PNG/JPEG/WebP as an RGBA Pillow image (EXIF orientation applied; bounded size, see avatar.limits)."""
    from avatar.limits import open_image

    path = Path(path)
    if not path.is_file():
        raise AvatarError(f"image not found: {path}", field=field, hint="check the path (relative to the script's folder)")
    with open_image(path, field=field, hint="use PNG, JPEG or WebP") as im:
        return im.convert("RGBA")


def fit_image(im, size: tuple[int, int], mode: str = "fit"):
    """Scale a Pillow image into (w, h): 'fit' keeps it whole (result may be smaller), 'fill' covers and crops."""
    from PIL import Image, ImageOps

    w, h = max(1, int(size[0])), max(1, int(size[1]))
    if mode == "fill":
        return ImageOps.fit(im, (w, h), Image.Resampling.LANCZOS)
    return ImageOps.contain(im, (w, h), Image.Resampling.LANCZOS)


def render_pdf_page(path: Path, page: int, size: tuple[int, int]):
    """Render 1-based `page` of a PDF to fit inside `size`, as an RGB Pillow image."""
    import pypdfium2 as pdfium

    path = Path(path)
    if not path.is_file():
        raise AvatarError(f"PDF not found: {path}", field="pdf")
    try:
        doc = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as e:
        raise AvatarError(f"cannot read PDF: {e}", path=path, field="pdf") from None
    try:
        n = len(doc)
        if not 1 <= page <= n:
            raise AvatarError(f"page {page} is out of range: the PDF has {n} page{'s' if n != 1 else ''}",
                              path=path, field="page", hint=f"use a page from 1 to {n}")
        p = doc[page - 1]
        pw, ph = p.get_size()
        scale = min(size[0] / pw, size[1] / ph)
        return p.render(scale=scale).to_pil().convert("RGB")
    finally:
        doc.close()
