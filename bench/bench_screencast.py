"""Benchmark of a video (screencast) slide: render time and peak memory of a 2-minute scene.

Generates a synthetic 1920x1080 30 fps H.264 screencast with PyAV (scrolling code text,
a moving cursor, a frame counter: never committed), then renders, each in its own
process (so peak RSS is that render's alone), at 1280x720 / 25 fps with the pip presenter:
  - a scene whose slide plays the whole 2-minute screencast (`duration: clip`)
  - the same scene with a 20 s cut of it (peak memory should not grow with the clip's length)
  - a static bullets slide of the same 2 minutes (the difference: decoding the clip and, mostly,
    encoding a picture that moves every frame instead of a still one)
  - the clip's frames alone (decode + scale into the slide, no presenter, no encoding)
(no narration: the presenter idles, so the figures are the slide's and the presenter's cost)
and prints seconds, real-time factor, the ratios, and peak RSS.

Usage: python bench/bench_screencast.py [--quick]   (--quick: a 30 s screencast instead of 2 minutes)
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from avatar.api import render
from avatar.script import load
script, out, cache = sys.argv[1:4]
t = time.perf_counter()
r = render(load(Path(script)), Path(out), cache_dir=Path(cache), cache=False)
print(json.dumps({"seconds": time.perf_counter() - t, "duration": r.duration,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_screencast(path: Path, seconds: float, size=(1920, 1080), fps: int = 30) -> None:
    """A synthetic screencast: a page of code scrolling under a title bar, a moving cursor, the frame number."""
    import av
    import cv2

    w, h = size
    page = np.full((h * 3, w, 3), 236, np.uint8)
    for k in range(0, h * 3 // 28):
        cv2.putText(page, f"{k:4d}  def step_{k}(state, x):  return state.apply(x * {k % 17}) + {k % 5}",
                    (40, 40 + k * 28), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (30, 30, 30), 1, cv2.LINE_AA)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.codec_context.options = {"preset": "veryfast", "crf": "26", "g": str(fps * 4)}
        for i in range(int(seconds * fps)):
            y = (i * 3) % (h * 2)
            img = page[y:y + h].copy()
            cv2.rectangle(img, (0, 0), (w, 60), (45, 60, 160), -1)
            cv2.putText(img, f"screencast  frame {i}", (30, 42), cv2.FONT_HERSHEY_SIMPLEX, 1.1, (255, 255, 255), 2)
            cx, cy = int(w * (0.5 + 0.4 * np.sin(i / 40))), int(h * (0.5 + 0.35 * np.cos(i / 53)))
            cv2.circle(img, (cx, cy), 10, (0, 0, 0), -1)
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = i
            c.mux(s.encode(f))
        c.mux(s.encode(None))


def deck(path: Path, slide: str, duration: str) -> Path:
    """One scene without narration (the presenter idles: blinks, head sway) lasting `duration`."""
    path.write_text("\n".join([
        "title: Screencast bench", "size: 1280x720", "fps: 25",
        "avatar: {layout: pip, motion: phonemes}", "scenes:",
        f"  - slide: {slide}", f"    duration: {duration}"]) + "\n")
    return path


def run(script: Path, out: Path, cache: Path) -> dict:
    res = subprocess.run([sys.executable, "-c", CHILD, str(script), str(out), str(cache)],
                         capture_output=True, text=True)
    if res.returncode:
        sys.exit(f"render failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    seconds = 30.0 if "--quick" in sys.argv else 120.0
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f} (others' work on the same cores skews absolute times)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = tmp / "screencast.mp4"
        t = time.perf_counter()
        make_screencast(clip, seconds)
        print(f"screencast: {seconds:.0f} s 1920x1080 30 fps, {clip.stat().st_size / 1e6:.1f} MB, "
              f"made in {time.perf_counter() - t:.0f} s")
        video = "{layout: video, title: Demo, video: screencast.mp4, fit: contain}"
        short = "{layout: video, title: Demo, video: screencast.mp4, fit: contain, end: 20}"
        static = "{layout: bullets, title: Demo, bullets: [The editor, The code]}"
        rows = [("video slide, whole screencast", deck(tmp / "long.yaml", video, "clip")),
                ("video slide, first 20 s", deck(tmp / "short.yaml", short, "clip")),
                (f"static slide, {seconds:.0f} s", deck(tmp / "static.yaml", static, f"{seconds:g}"))]
        from avatar.compose.video_slide import ClipFrames

        frames = ClipFrames(clip, 0.0, seconds, 25, (52, 120, 1228, 690), "contain", False, (1280, 720))
        canvas = np.zeros((720, 1280, 3), np.uint8)
        t, cpu = time.perf_counter(), time.process_time()
        for _ in range(int(seconds * 25)):
            frames.paste(canvas)
        wall, cpu = time.perf_counter() - t, time.process_time() - cpu
        print(f"{'clip frames alone (decode+scale)':32s} {seconds * 25 / wall:6.0f} fps wall, "
              f"{cpu / (seconds * 25) * 1000:.1f} ms CPU per frame")
        results = {}
        for name, script in rows:
            r = run(script, tmp / f"{script.stem}.mp4", tmp / "cache")
            results[name] = r
            print(f"{name:32s} {r['duration']:6.1f} s video in {r['seconds']:6.1f} s -> RTF "
                  f"{r['seconds'] / r['duration']:.2f}, {r['duration'] * 25 / r['seconds']:.0f} fps, "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB")
        long, short_r, stat = (results[n] for n, _ in rows)
        print(f"ratio video / static slide (same length): {long['seconds'] / stat['seconds']:.2f}")
        print(f"peak RSS {seconds:.0f} s clip / 20 s clip: {long['peak_rss_mb'] / short_r['peak_rss_mb']:.2f} "
              f"(1.00 = flat); load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
