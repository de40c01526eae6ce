"""Benchmark the diffusion renderer: frames per second, peak GPU memory, flicker.

    python bench/bench_diffusion.py                      # CUDA: real weights if cached, else SD1.5-shaped random weights
    python bench/bench_diffusion.py --steps 4 8 20 --regions mouth face --frames 48
    python bench/bench_diffusion.py --random-weights     # same architecture and cost, no download needed

On a machine without CUDA it runs the tiny random test model at 64x64 and says so:
those figures are NOT GPU figures and say nothing about real speed.

Flicker: the presenter's head is held still and only the mouth moves; over the pixels
of the diffused region that the warp renderer leaves unchanged between two frames, the
mean absolute difference (0..255) between consecutive output frames. The warp frames'
own figure there is 0 by construction; lower is steadier.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from avatar.errors import AvatarError  # noqa: E402
from avatar.renderers import diffusion as dr  # noqa: E402
from avatar.script.models import RendererSpec  # noqa: E402
from avatar.types import Motion  # noqa: E402


def sd15_shaped_components(dtype):
    """Random weights with the exact Stable Diffusion 1.5 + ControlNet shapes (same FLOPs)."""
    import torch
    from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8)
    controlnet = ControlNetModel.from_unet(unet)
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        sample_size=512, scaling_factor=0.18215)
    sched = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                          clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    return {k: v.to(dtype) if hasattr(v, "to") and k != "scheduler" else v
            for k, v in {"unet": unet, "controlnet": controlnet, "vae": vae, "scheduler": sched}.items()}


def tiny_components():
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from test_diffusion import tiny_components as make

    return make()


def talking_still_head(n: int, fps: float = 25.0) -> Motion:
    m = Motion.rest(n, fps)
    t = np.arange(n) / fps
    m.mouth[:, 0] = 0.15 * (1 - np.cos(2 * np.pi * 3.0 * t))      # 3 Hz open/close, head still
    return m


def flicker(out: list[np.ndarray], base: list[np.ndarray], boxes: list[tuple[int, int, int]]) -> float:
    diffs = []
    for t in range(1, len(out)):
        x0, y0, s = boxes[t]
        if boxes[t - 1] != boxes[t]:
            continue
        b0, b1 = base[t - 1][y0:y0 + s, x0:x0 + s], base[t][y0:y0 + s, x0:x0 + s]
        static = np.all(b0 == b1, axis=-1)
        if static.any():
            o0 = out[t - 1][y0:y0 + s, x0:x0 + s].astype(np.float32)
            o1 = out[t][y0:y0 + s, x0:x0 + s].astype(np.float32)
            diffs.append(np.abs(o1 - o0)[static].mean())
    return float(np.mean(diffs)) if diffs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=None, help="frames per run (default 48 on CUDA, 6 on CPU)")
    ap.add_argument("--steps", type=int, nargs="+", default=[4, 8, 20])
    ap.add_argument("--regions", nargs="+", default=["mouth", "face"], choices=["mouth", "face"])
    ap.add_argument("--strength", type=float, default=0.35)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--blend", type=float, nargs="+", default=[0.0, 0.2], help="temporal_blend values")
    ap.add_argument("--base", default=None, help="SD 1.5 folder or hub id (default: the renderer's)")
    ap.add_argument("--controlnet", default=None)
    ap.add_argument("--random-weights", action="store_true", help="SD1.5-shaped random weights (CUDA)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the UNet")
    args = ap.parse_args()

    import torch

    from avatar.face import load_identity
    from avatar.renderers.warp import WarpRenderer
    from avatar.resources import default_photo

    cuda = torch.cuda.is_available()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    n = args.frames or (48 if cuda else 6)
    ident = load_identity(default_photo())
    motion = talking_still_head(n)
    print(f"machine: {platform.node()} {platform.processor() or platform.machine()}, torch {torch.__version__}")
    if cuda:
        print(f"device: {torch.cuda.get_device_name(0)}")
        pipe, what = None, "random SD1.5-shaped weights (same cost as the real model)"
        if not args.random_weights:
            try:
                pipe = dr.load_pipeline(args.base or dr.DEFAULT_BASE, args.controlnet or dr.DEFAULT_CONTROLNET, "cuda")
                what = f"real weights: {args.base or dr.DEFAULT_BASE} + {args.controlnet or dr.DEFAULT_CONTROLNET}"
            except AvatarError as e:
                print(f"({e}; using random weights instead)")
        if pipe is None:
            from diffusers import StableDiffusionControlNetImg2ImgPipeline

            parts = sd15_shaped_components(torch.float16)
            pipe = StableDiffusionControlNetImg2ImgPipeline(**parts, text_encoder=None, tokenizer=None,
                                                            safety_checker=None, feature_extractor=None,
                                                            image_encoder=None, requires_safety_checker=False)
            pipe.to("cuda")
            pipe.unet.to(memory_format=torch.channels_last)
            pipe.controlnet.to(memory_format=torch.channels_last)
    else:
        from diffusers import StableDiffusionControlNetImg2ImgPipeline

        what = "tiny random test model at 64x64 on the CPU -- NOT GPU figures, say nothing about real speed"
        pipe = StableDiffusionControlNetImg2ImgPipeline(**tiny_components(), text_encoder=None, tokenizer=None,
                                                        safety_checker=None, feature_extractor=None,
                                                        image_encoder=None, requires_safety_checker=False)
    print(f"model: {what}; resolution {dr.model_resolution(pipe)}; {n} frames; strength {args.strength}; batch {args.batch}")

    base_frames = list(WarpRenderer().frames_with_landmarks(ident, motion))
    print(f"{'region':6} {'steps':>5} {'blend':>5} {'fps':>7} {'peak GiB':>8} {'flicker':>7}")
    for region in args.regions:
        track = dr.region_track(base_frames[0][1], region)
        boxes = [dr.region_box(lm, f.shape[:2], track) for f, lm in base_frames]
        for steps in args.steps:
            for blend in args.blend:
                spec = RendererSpec(name="diffusion", allow_cpu=True, steps=steps, strength=args.strength,
                                    region=region, batch=args.batch)
                r = dr.DiffusionRenderer(spec, WarpRenderer(), pipe=pipe, temporal_blend=blend, compile=args.compile)
                list(r.frames(ident, Motion.rest(min(args.batch, n), 25)))   # warm-up (and compile)
                if cuda:
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                t0 = time.perf_counter()
                out = list(r.frames(ident, motion))
                if cuda:
                    torch.cuda.synchronize()
                dt = time.perf_counter() - t0
                peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
                fl = flicker(out, [f for f, _ in base_frames], boxes)
                print(f"{region:6} {steps:5d} {blend:5.2f} {n / dt:7.2f} {peak:8.2f} {fl:7.2f}", flush=True)
    if not cuda:
        print("NOTE: no CUDA here; the numbers above are from a tiny random CPU model, not GPU figures.")


if __name__ == "__main__":
    main()
