"""Benchmark the audio-to-lips model: CPU real-time factor and lip-sync figures on real video.

    python bench/bench_lips.py [--video PATH] [--photo PATH] [--transcript TEXT]
                               [--folder DIR] [--previous CHECKPOINT]

The network runs as at run time: avatar/data/lips.onnx on onnxruntime, one thread.

Real media come from ../shared/eval (see its README; never in the repo). When that
folder is missing, the script says so and prints only what it can compute (exit 0).
--folder also prints the per-clip table of `avatar lips eval DIR` (default: ../shared/eval,
clips no checkpoint trained on). The cross-validated headline figures (held-out speakers
of ../shared/train) come from `avatar lips eval ../shared/train --folds 4 ...` (README).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EVAL = ROOT.parent / "shared" / "eval"


def machine() -> str:
    import onnxruntime

    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"onnxruntime {onnxruntime.__version__} with 1 thread")


def realtime_factor(model, seconds: float = 60.0, repeats: int = 3) -> tuple[float, float]:
    """(audio seconds per compute second, ms per second of audio) on `seconds` of speech-like audio."""
    import numpy as np

    rng = np.random.default_rng(0)
    sr = 16000
    t = np.arange(int(seconds * sr)) / sr
    audio = (0.2 * np.sin(2 * np.pi * 150 * t) * np.clip(np.sin(2 * np.pi * 3 * t), 0, None)
             + 0.01 * rng.standard_normal(len(t))).astype(np.float32)
    model.predict(audio[: sr * 2], sr, 50, 25.0)      # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.predict(audio, sr, int(seconds * 25), 25.0)
        best = min(best, time.perf_counter() - t0)
    return seconds / best, 1000 * best / seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path, default=EVAL / "WDA_AlexandriaOcasioCortez_000.mp4")
    ap.add_argument("--photo", type=Path, default=EVAL / "sad.png", help="photo for rendered-output mode")
    ap.add_argument("--transcript", default=None, help="what the video says (adds rig/hybrid baselines)")
    ap.add_argument("--folder", type=Path, default=EVAL, help="folder of real clips for the per-clip table")
    ap.add_argument("--previous", type=Path, default=None, help="another checkpoint to score beside the packaged one")
    args = ap.parse_args()

    from avatar.motion.audio_model import load_model

    model = load_model()
    print(f"machine: {machine()}")
    info = model.cfg.info
    real = info.get("real") or {}
    print(f"model: {model.n_params} parameters, {info.get('mode')}"
          + (f" ({len(real.get('clips', []))} real clips, {real.get('minutes')} min)" if real else ""))
    rtf, ms = realtime_factor(model)
    print(f"inference: {rtf:.0f}x faster than real time ({ms:.2f} ms per second of audio, features included)")

    if args.folder.is_dir():
        from avatar.lips.evaluate import evaluate_folder, format_table

        t0 = time.perf_counter()
        rows = evaluate_folder(args.folder, previous_path=args.previous, log=print)
        print(format_table(rows, title=f"{args.folder} ({time.perf_counter() - t0:.0f} s)"))
    else:
        print(f"real clip folder not found: {args.folder}; skipping the per-clip table")
    if not args.video.is_file():
        print(f"real evaluation video not found: {args.video} (the ../shared/eval folder is missing?); "
              "skipping the lip-sync figures")
        return 0
    from avatar.lips.evaluate import evaluate_video, format_report

    photo = args.photo if args.photo.is_file() else None
    if photo is None:
        print(f"photo not found: {args.photo}; skipping rendered-output mode")
    if not args.transcript:
        print("no transcript known for this clip: phoneme-rig and hybrid baselines skipped")
    try:
        t0 = time.perf_counter()
        res = evaluate_video(args.video, transcript=args.transcript, rendered_with=photo)
        print(format_report(res))
        print(f"({time.perf_counter() - t0:.1f} s; rendered-output mode on {photo.name if photo else 'no photo'})")
    except ImportError as e:   # renderer not available in this checkout
        print(f"rendered-output mode unavailable: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
