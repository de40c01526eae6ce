"""Warp renderer speed: frames per second at a 512x512 face crop and at 1920x1080 paste-back.

    python bench/bench_render.py [--frames 200] [--photo PATH] [--repeat 3]

Each figure is the best of --repeat runs (wall clock; CPU-time fps beside it): on a
shared machine the best run is the one least disturbed by other work.

Uses the bundled astronaut photo (or --photo); the 1920x1080 picture places it, upscaled
2x, on a canvas. Motion is a real phoneme-rig track with idle motion (blinks, sway).
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
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--photo", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure; the best is printed")
    ap.add_argument("--threads", type=int, default=1, help="OpenCV threads (default 1: per-core figure)")
    args = ap.parse_args()

    import cv2
    from PIL import Image

    from avatar.face import load_identity
    from avatar.motion import phoneme_motion
    from avatar.renderers.warp import WarpRenderer
    from avatar.resources import default_photo
    from avatar.types import Phoneme, Speech

    cv2.setNumThreads(args.threads)
    photo = args.photo or default_photo()
    fps = 25.0
    syms = "h ə l oʊ w ɜː l d m aɪ n eɪ m ɪ z b ɑː b ð ɪ s ɪ z ə p ɹ ɛ z ə n t eɪ ʃ ə n".split()
    phs, t = [], 0.3
    for i in range(args.frames // 2):
        d = 0.06 + 0.05 * ((i * 7) % 3)
        phs.append(Phoneme(syms[i % len(syms)], t, t + d))
        t += d
    speech = Speech(np.zeros(int((args.frames / fps) * 16000), np.float32), 16000, phs)
    motion = phoneme_motion(speech, fps, seed=0)

    def run(ident, renderer, crop):
        best = None
        for _ in range(max(1, args.repeat)):
            t0 = time.perf_counter()
            gen = renderer.frames(ident, motion, crop=crop)
            first = next(gen)
            t1, c1 = time.perf_counter(), time.process_time()
            n = 1
            for _ in gen:
                n += 1
            t2, c2 = time.perf_counter(), time.process_time()
            res = (first.shape, t1 - t0, (n - 1) / (t2 - t1), (n - 1) / max(c2 - c1, 1e-9))
            best = res if best is None or res[2] > best[2] else best
        return best

    ident = load_identity(photo)
    print(f"machine: {platform.machine()} {platform.processor() or ''} cores={os.cpu_count()} "
          f"opencv_threads={cv2.getNumThreads()} python={platform.python_version()}")
    print(f"photo: {photo} {ident.image.shape[1]}x{ident.image.shape[0]}, eye distance {ident.eye_distance:.0f}px, "
          f"face box {ident.face_box}")
    shape, setup, rate, cpu = run(ident, WarpRenderer(size=512), crop=True)
    print(f"crop 512x512      : {rate:7.1f} fps, {cpu:6.1f} per CPU second  (frame {shape}, setup {setup * 1000:.0f} ms incl. first frame)")

    with tempfile.TemporaryDirectory() as d:
        img = Image.open(photo).convert("RGB")
        img = img.resize((img.width * 2, img.height * 2), Image.BICUBIC)
        canvas = Image.new("RGB", (1920, 1080), (40, 44, 52))
        canvas.paste(img.crop((0, 0, min(img.width, 1920), min(img.height, 1080))), (1920 - img.width - 100, 0))
        p = Path(d) / "hd.png"
        canvas.save(p)
        hd = load_identity(p)
    shape, setup, rate, cpu = run(hd, WarpRenderer(), crop=False)
    print(f"paste-back 1920x1080: {rate:7.1f} fps, {cpu:6.1f} per CPU second  (frame {shape}, face box side {hd.face_box[2] - hd.face_box[0]}px, "
          f"setup {setup * 1000:.0f} ms)")
    print(f"frames per run: {len(motion)}")


if __name__ == "__main__":
    main()
