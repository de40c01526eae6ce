"""Is x264's stream for the same pictures the same every time, inside a long-running process?

    python bench/bench_determinism.py [--encodes 300] [--asm auto]

One process encodes the same 12 pictures (a theme gradient, 160x96) with write_mp4 again and
again, and between two encodes renders something else (a pip scene, `say` with the lips
model, a two-process render, a numpy matrix product), as a test session or a batch does.
It prints how many encodes gave each stream (md5 of the video packets) and the first
encodes that differed from the first one's.

`--asm auto` lets x264 use all of the CPU's code (its AVX-512 code where the CPU has it)
instead of write_mp4's choice (avatar.video.mp4.x264_asm). Measured on a 2-core AVX-512
machine (Xeon, PyAV's x264 core 165): with `--asm auto`, 37 of 400 encodes gave one of 11
other streams, in bursts of 2-7 from about the 45th encode on; with write_mp4's choice
(asm=AVX2), 300 of 300 gave the same stream. The process keeps freed memory as the scene
workers do (avatar.build.memory), which hands x264 memory that other code wrote before more
often than the system's zeroed pages. Takes about 1 s per encode.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--encodes", type=int, default=300)
    ap.add_argument("--asm", choices=["ours", "auto"], default="ours",
                    help="auto: x264's own choice of CPU code (AVX-512 where there is one)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    import av
    import numpy as np

    import avatar
    import avatar.video.mp4 as mp4
    from avatar.compose.theme import load_theme, render_background
    from avatar.resources import default_photo

    if args.asm == "auto":
        mp4.x264_asm = lambda: {}
    from avatar.build.memory import keep_freed_memory

    kept = keep_freed_memory()   # as in the command line and the scene workers: freed memory is reused
    theme = load_theme()
    picture = render_background(theme.background, (160, 96), theme.background_image)
    print(f"machine: {platform.machine()}, {len(os.sched_getaffinity(0))} CPUs; x264 options "
          f"{mp4.x264_asm() or 'its own choice'}; {args.encodes} encodes; freed memory kept "
          f"(avatar.build.memory): {'yes' if kept else 'no'}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)

        def encode() -> str:
            mp4.write_mp4(tmp / "e.mp4", [picture] * 12, fps=8)
            with av.open(str(tmp / "e.mp4")) as c:
                return hashlib.md5(b"".join(bytes(p) for p in c.demux(video=0) if p.size)).hexdigest()[:8]

        def other(i: int) -> None:
            shutil.rmtree(tmp / "cache", ignore_errors=True)
            k = i % 4
            if k == 0:
                deck = avatar.Presentation(title="x", size="320x180", fps=8,
                                           avatar=avatar.AvatarSpec(layout="pip", motion="phonemes"),
                                           scenes=[avatar.Scene(narration="Hello there, a few words.")])
                avatar.render(deck, tmp / "r.mp4", cache_dir=tmp / "cache", jobs=1)
            elif k == 1:
                avatar.say("Another sentence here.", face=default_photo(), out=tmp / "s.mp4", fps=8, size=128,
                           motion="audio")
            elif k == 2:
                deck = avatar.Presentation(title="x", size="160x96", fps=8, avatar=avatar.AvatarSpec(layout="none"),
                                           scenes=[avatar.Scene(narration="One small scene."),
                                                   avatar.Scene(narration="Two.")])
                avatar.render(deck, tmp / "r2.mp4", cache_dir=tmp / "cache", jobs=2)
            else:
                x = np.random.default_rng(i).random((1500, 1500))
                float((x @ x).sum())

        counts: dict[str, int] = {}
        first, odd = None, []
        t0 = time.perf_counter()
        for i in range(args.encodes):
            h = encode()
            first = first or h
            counts[h] = counts.get(h, 0) + 1
            if h != first and len(odd) < 10:
                odd.append(i)
            other(i)
    same = counts[first]
    print(f"{same} of {args.encodes} encodes gave the first stream ({first}); {len(counts) - 1} other stream(s)"
          + (f", first at encodes {odd}" if odd else "") + f"; {time.perf_counter() - t0:.0f} s")
    for h, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"  {h}: {n}")
    return 0 if same == args.encodes else 1


if __name__ == "__main__":
    raise SystemExit(main())
