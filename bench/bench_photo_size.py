"""A phone-sized photo against the same photo small: what the presenter's photo size costs a render.

    python bench/bench_photo_size.py [--tree DIR] [--layouts pip,side] [--size 1280x720]

The bundled presenter photo (512x512) is upscaled to 12 megapixels (4032x3024, what a phone
camera writes) and both are rendered in the same one-scene deck (about 6 s of speech) on an
empty cache, one layout after another: wall time, CPU seconds and peak RSS of each render,
and the big photo's time as a multiple of the small one's (measured back to back in this
run: quote that ratio, not the seconds). The upscaled photo has no more detail than the
small one; only its pixel count matters here. `--tree` times another source tree (an
older commit unpacked with `git archive`) with the same inputs, for before/after.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DECK = """\
title: Photo size
size: {size}
avatar: {{photo: {photo}, layout: {layout}}}
scenes:
  - slide: {{title: A phone photo, bullets: [Twelve megapixels, One small box]}}
    narration: This presenter comes from a twelve megapixel photo, shown in a small box on the slide.
"""


def render(tree: Path, deck: Path, out: Path) -> dict:
    """Wall seconds, CPU seconds and peak RSS (MB) of one serial render on an empty cache."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    err = out.with_suffix(".err")
    t0 = time.perf_counter()
    with open(err, "w") as f:
        p = subprocess.Popen([sys.executable, "-m", "avatar.cli", "render", str(deck), "-o", str(out), "--jobs", "1",
                              "--cache-dir", str(out.parent / f"cache-{out.stem}")], env=env, stdout=f, stderr=f,
                             cwd=out.parent)   # not this checkout: `-m` puts the current folder first
        _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"render failed: {err.read_text().strip()[-400:]}")
    return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "rss": ru.ru_maxrss / 1024}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tree", type=Path, default=ROOT, help="source tree to run (default: this checkout)")
    ap.add_argument("--layouts", default="pip,side", help="presenter layouts, comma-separated")
    ap.add_argument("--size", default="1280x720")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from PIL import Image

    from avatar.resources import default_photo

    code = subprocess.run([sys.executable, "-c", "import avatar; print(avatar.__file__)"], cwd=tempfile.gettempdir(),
                          env={**os.environ, "PYTHONPATH": str(args.tree)}, capture_output=True, text=True).stdout.strip()
    print(f"machine: {platform.machine()}, {len(os.sched_getaffinity(0))} CPUs, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; code {code}; video {args.size}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        small = default_photo()
        big = tmp / "phone.jpg"
        im = Image.open(small).convert("RGB")
        im.resize((4032, 4032), Image.Resampling.BICUBIC).crop((0, 504, 4032, 3528)).save(big, quality=90)
        for layout in args.layouts.split(","):
            row = {}
            for name, photo in (("small", small), ("12 MP", big)):
                deck = tmp / f"{layout}-{name[:2]}.yaml"
                deck.write_text(DECK.format(size=args.size, photo=photo, layout=layout))
                row[name] = render(args.tree, deck, tmp / f"{layout}-{name[:2].strip()}.mp4")
            s, b = row["small"], row["12 MP"]
            print(f"{layout:5s} small photo {s['wall']:5.1f} s (CPU {s['cpu']:5.1f} s, peak RSS {s['rss']:4.0f} MB); "
                  f"12 MP photo {b['wall']:5.1f} s (CPU {b['cpu']:5.1f} s, peak RSS {b['rss']:4.0f} MB): "
                  f"{b['wall'] / s['wall']:.2f}x the small photo's time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
