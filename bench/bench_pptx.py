"""Deck conversion and rendering: a 10-slide .pptx with builds, made here with python-pptx.

    python bench/bench_pptx.py [--slides 10] [--full]

The deck: a title slide, then picture slides and text slides in turn; every text slide has
three paragraphs, two of them appearing on clicks (3 build steps). Figures:
- conversion as avatar.script.deck does it (every build-step variant in ONE LibreOffice run),
  cold cache: seconds in total and per slide, and how many LibreOffice runs it took;
- the same pages converted the naive ways, one LibreOffice run per variant (per build step)
  and one run per page (per slide and step), and the ratios;
- loading the deck again from the cache (verified);
- the whole render of the deck (`avatar render deck.pptx --preview`, or full size with --full),
  with the video's duration and the real-time factor, against the same scenes and narration on
  drawn title slides (what the PDF pages and build steps add).
Needs LibreOffice (apt-get install libreoffice-impress). Prints the machine and the figures.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))   # the deck builder tests use


def build_deck(folder: Path, n_slides: int) -> Path:
    import decks

    prs = decks.new_deck()
    s = prs.slides.add_slide(prs.slide_layouts[0])
    s.shapes.title.text = "Benchmark deck"
    s.placeholders[1].text = f"{n_slides} slides"
    s.notes_slide.notes_text_frame.text = "Welcome. This deck measures the conversion."
    picture = decks.test_image(folder / "picture.png")
    for i in range(2, n_slides + 1):
        if i % 2:
            decks.picture_slide(prs, f"Picture {i}", picture, notes=f"Slide {i} shows a picture.", fade=True)
        else:
            decks.text_slide(prs, f"Points {i}", [f"First point {i}", f"Second point {i}", f"Third point {i}"],
                             build=True, notes=f"Slide {i}. [next] The second point. [next] And the third.")
    path = folder / "bench.pptx"
    prs.save(path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--slides", type=int, default=10)
    ap.add_argument("--full", action="store_true", help="render at full size (default: --preview)")
    args = ap.parse_args()
    if not (shutil.which("soffice") or shutil.which("libreoffice") or os.environ.get("AVATAR_SOFFICE")):
        sys.exit("LibreOffice is missing: apt-get install libreoffice-impress")

    from avatar.api import render
    from avatar.script import load
    from avatar.script.deck import office
    from avatar.script.deck import converted

    print(f"machine: {platform.machine()} {platform.processor() or ''} cores={os.cpu_count()}")
    runs = []
    real_convert = office.convert

    def counting(inputs, fmt, outdir, **kw):
        runs.append(len(inputs))
        return real_convert(inputs, fmt, outdir, **kw)

    office.convert = counting
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        os.environ["AVATAR_CACHE"] = str(d / "cache")
        deck = build_deck(d, args.slides)

        t0 = time.perf_counter()
        conv = converted(deck)
        t_batch = time.perf_counter() - t0
        pages = max(p for s in conv.slides for p in s["pages"])
        print(f"deck: {args.slides} slides, {pages} pages (build steps included)")
        print(f"conversion, all variants in one run: {t_batch:6.2f} s = {t_batch / args.slides:.2f} s/slide "
              f"({len(runs)} LibreOffice run(s), {sum(runs)} variant file(s))")

        # the naive way: the same variant decks, one LibreOffice run each
        from avatar.script.deck.pptx import open_pptx, read_slides, write_variant

        slides = [s for s in read_slides(open_pptx(deck, str(deck))) if not s.hidden]
        depth = max(len(s.distinct) for s in slides)
        t0 = time.perf_counter()
        for v in range(depth):
            vdeck = d / f"naive{v}.pptx"
            write_variant(deck, vdeck, {s.number: s.distinct[v] for s in slides if len(s.distinct) > v})
            real_convert([vdeck], "pdf", d / "naive", timeout=600, what=str(vdeck))
        t_naive = time.perf_counter() - t0
        print(f"conversion, one run per variant ({depth} runs): {t_naive:6.2f} s "
              f"(one run is {t_naive / t_batch:.2f}x faster)")
        # the naivest way: one LibreOffice run per page (per slide and build step)
        t0 = time.perf_counter()
        n_runs = 0
        for s in slides:
            for k, state in enumerate(s.distinct):
                pdeck = d / f"page{s.number}-{k}.pptx"
                write_variant(deck, pdeck, {s.number: state})
                real_convert([pdeck], "pdf", d / "naive", timeout=600, what=str(pdeck))
                n_runs += 1
        t_page = time.perf_counter() - t0
        print(f"conversion, one run per page ({n_runs} runs):   {t_page:6.2f} s "
              f"(one run is {t_page / t_batch:.2f}x faster)")

        t0 = time.perf_counter()
        load(deck)
        print(f"load again from the cache (verified):   {time.perf_counter() - t0:6.2f} s")

        what = "full size" if args.full else "--preview"
        out = d / "talk.mp4"
        t0 = time.perf_counter()
        result = render(deck, out, preview=not args.full, cache_dir=d / "scenes")
        dt = time.perf_counter() - t0
        print(f"render {what} ({result.scenes} scenes, {result.duration:.1f} s of video): {dt:6.1f} s "
              f"(real-time factor {dt / result.duration:.2f}; conversion cached)")
        # the same scenes and narration on drawn title slides instead of the deck's pages
        from avatar.script.models import Slide

        pres = load(deck)
        drawn = pres.model_copy(update={"scenes": [
            sc.model_copy(update={"slide": Slide(layout="title", title=f"Slide {i + 1}")})
            for i, sc in enumerate(pres.scenes)]})
        t0 = time.perf_counter()
        base = render(drawn, d / "drawn.mp4", preview=not args.full, cache_dir=d / "scenes-drawn")
        db = time.perf_counter() - t0
        print(f"render {what}, same narration on drawn title slides ({base.duration:.1f} s): {db:6.1f} s "
              f"(the deck costs {dt / db:.2f}x)")


if __name__ == "__main__":
    main()
