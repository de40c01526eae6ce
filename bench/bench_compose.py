"""Composition and encoding speed: frames per second at 720p and 1080p.

    python bench/bench_compose.py [--frames 100]

Composes a bullets slide (pip, side and full layouts) with burned captions (word highlight) and the
AI-generated badge from synthetic 512x512 face frames (the astronaut photo, shifted a
little each frame), alone and streamed into write_mp4 (libx264 veryfast, crf 23).
Face rendering is not included. Prints the machine and the figures.
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=100)
    args = ap.parse_args()

    from avatar.compose import SceneComposer
    from avatar.script.models import AvatarSpec, CaptionSpec, Presentation, Scene, Slide
    from avatar.types import Cue, Identity, Speech, Word
    from avatar.video import write_mp4

    print(f"machine: {platform.machine()} {platform.processor() or ''} cores={os.cpu_count()} "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    n, fps = args.frames, 25
    from skimage import data

    photo = data.astronaut()   # 512x512; 8 shifted crops stand in for a moving face
    faces = [np.ascontiguousarray(np.roll(photo, (2 * k, k), axis=(0, 1))) for k in range(8)]
    ident = Identity(image=faces[0], landmarks=np.zeros((478, 3), np.float32), face_box=(0, 0, 512, 512),
                     face_mask=np.ones((512, 512), np.float32), person_mask=np.ones((512, 512), np.float32))
    words = [Word(w, 0.3 * i, 0.3 * i + 0.25) for i, w in enumerate("one two three four five six seven".split())]
    cues = [Cue(0.0, n / fps, ("one two three four five six seven",), tuple(words))]
    speech = Speech(np.zeros(int(n / fps * 16000), np.float32), 16000, words=words)
    slide = Slide(layout="bullets", title="Benchmark slide", bullets=["first point", "second point"])
    for size in ((1280, 720), (1920, 1080)):
        for layout, shape, bg in (("pip", "rounded", "keep"), ("side", "rect", "keep"), ("full", "rect", "keep"),
                                  ("full", "rect", "remove"), ("pip", "circle", "remove")):
            p = Presentation(size=size, scenes=[Scene(slide=slide, narration="x")], badge=True,
                             avatar=AvatarSpec(layout=layout, shape=shape, background=bg),
                             captions=CaptionSpec(highlight=True))
            comp = SceneComposer(p, p.scenes[0], ident)
            comp.background(None)   # slide drawn once, outside the timing
            t0 = time.perf_counter()
            for _ in comp.frames((faces[i % 8] for i in range(n)), speech, cues, n, face_is_crop=True):
                pass   # streamed: each frame is dropped as the next one comes, as in the pipeline
            dt = time.perf_counter() - t0
            print(f"compose {layout} {shape}/{bg} {size[0]}x{size[1]}: {n / dt:7.1f} frames/s "
                  f"({dt / n * 1000:.2f} ms/frame)")
        with tempfile.TemporaryDirectory() as d:   # the last composer (pip circle/remove) straight into the encoder
            t0 = time.perf_counter()
            write_mp4(Path(d) / "b.mp4", comp.frames((faces[i % 8] for i in range(n)), speech, cues, n,
                                                     face_is_crop=True),
                      fps=fps, audio=speech.audio, sample_rate=16000)
            dt = time.perf_counter() - t0
            print(f"compose + write_mp4 {size[0]}x{size[1]} (libx264 veryfast crf 23, threads auto): "
                  f"{n / dt:7.1f} frames/s (real-time factor {dt / (n / fps):.2f})")

if __name__ == "__main__":
    main()
