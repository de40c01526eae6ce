"""A phone-sized photo against the same photo small: what the presenter's photo size costs a render.

    python bench/bench_photo_size.py [--tree DIR] [--layouts pip,side,say] [--size 1280x720]

The bundled presenter photo (512x512) is upscaled to 12 megapixels (4032x3024, what a phone
camera writes) and both are rendered in the same one-scene deck (about 6 s of speech) on an
empty cache, one layout after another: wall time, CPU seconds and peak RSS of each render,
and the big photo's time as a multiple of the small one's (measured back to back in this
run: quote that ratio, not the seconds). The upscaled photo has no more detail than the
small one; only its pixel count matters here. `--tree` times another source tree (an
older commit unpacked with `git archive`) with the same inputs, for before/after.

The layout `say` times `avatar say` instead (no --size: the photo's, at most 1920 px), with
the 12 MP photo against the same photo shrunk to the clip's size beforehand (1920x1440): what
a user who shrinks the photo first would get.
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


SAY = "This presenter comes from a twelve megapixel photo, and the clip is as large as the photo allows."


def render(tree: Path, deck: Path, out: Path, say_photo: Path | None = None) -> dict:
    """Wall seconds, CPU seconds and peak RSS (MB) of one serial render on an empty cache (or of
    `avatar say` with say_photo, its photo measured afresh)."""
    cache = out.parent / f"cache-{out.stem}"
    env = {**os.environ, "PYTHONPATH": str(tree), "AVATAR_CACHE": str(cache)}
    err = out.with_suffix(".err")
    cmd = (["say", SAY, "--face", str(say_photo), "-o", str(out)] if say_photo is not None else
           ["render", str(deck), "-o", str(out), "--jobs", "1", "--cache-dir", str(cache)])
    t0 = time.perf_counter()
    with open(err, "w") as f:
        p = subprocess.Popen([sys.executable, "-m", "avatar.cli", *cmd], env=env, stdout=f, stderr=f,
                             cwd=out.parent)   # not this checkout: `-m` puts the current folder first
        _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"render failed: {err.read_text().strip()[-400:]}")
    return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "rss": ru.ru_maxrss / 1024}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tree", type=Path, default=ROOT, help="source tree to run (default: this checkout)")
    ap.add_argument("--layouts", default="pip,side,say", help="presenter layouts, comma-separated; say: `avatar say`")
    ap.add_argument("--size", default="1280x720")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from PIL import Image

    from avatar.resources import default_photo

    code = subprocess.run([sys.executable, "-c", "import avatar; print(avatar.__file__)"], cwd=tempfile.gettempdir(),
                          env={**os.environ, "PYTHONPATH": str(args.tree)}, capture_output=True, text=True).stdout.strip()
    print(f"machine: {platform.machine()}, {len(os.sched_getaffinity(0))} CPUs, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; code {code}; video {args.size} (say: the photo's size, at most 1920 px)")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        small = default_photo()
        big = tmp / "phone.jpg"
        im = Image.open(small).convert("RGB")
        im.resize((4032, 4032), Image.Resampling.BICUBIC).crop((0, 504, 4032, 3528)).save(big, quality=90)
        shrunk = tmp / "shrunk.jpg"
        Image.open(big).resize((1920, 1440), Image.Resampling.LANCZOS).save(shrunk, quality=90)
        for layout in args.layouts.split(","):
            row = {}
            for name, photo in (("small", shrunk if layout == "say" else small), ("12 MP", big)):
                deck = tmp / f"{layout}-{name[:2]}.yaml"
                deck.write_text(DECK.format(size=args.size, photo=photo, layout=layout))
                row[name] = render(args.tree, deck, tmp / f"{layout}-{name[:2].strip()}.mp4",
                                   photo if layout == "say" else None)
            s, b = row["small"], row["12 MP"]
            first = "photo shrunk first" if layout == "say" else "small photo"
            print(f"{layout:5s} {first} {s['wall']:5.1f} s (CPU {s['cpu']:5.1f} s, peak RSS {s['rss']:4.0f} MB); "
                  f"12 MP photo {b['wall']:5.1f} s (CPU {b['cpu']:5.1f} s, peak RSS {b['rss']:4.0f} MB): "
                  f"{b['wall'] / s['wall']:.2f}x the time of the {first}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
