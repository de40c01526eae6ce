"""Diffusion renderer (GPU): refines the warp renderer's frames with a landmark-conditioned
Stable Diffusion 1.5 ControlNet, img2img at low strength.

Per frame:
  1. the base renderer (WarpRenderer) gives the frame and its 478 landmarks;
  2. a square region is cut out: the lower face around the mouth (region "mouth") or
     the whole face (region "face"), resized to the model's resolution (512 for SD 1.5);
  3. StableDiffusionControlNetImg2ImgPipeline denoises it from the warp pixels at
     `strength`, conditioned on the MediaPipe-face drawing of the landmarks
     (avatar.renderers.landmark_image), so identity and background come from the photo and
     the mouth shape from the landmarks;
  4. the result is pasted back with a feathered mask: pixels outside the region are the
     base frame's, untouched.

Temporal stability: every frame starts from the same noise (one generator per frame,
all seeded with the same seed), the sampler is deterministic (DDIM, eta 0), and at each
denoising step a frame's latents are blended with the previous frame's.

Weights come only from a local folder or the user's Hugging Face cache
(`local_files_only`); see docs/gpu.md for the download commands. Tests inject tiny
random components through `DiffusionRenderer.from_components`.
"""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from avatar.errors import AvatarError
from avatar.script.models import RendererSpec
from avatar.types import Identity, Motion, Renderer, eye_distance

DEFAULT_BASE = "stable-diffusion-v1-5/stable-diffusion-v1-5"
DEFAULT_CONTROLNET = "CrucibleAI/ControlNetMediaPipeFace"
CONTROLNET_SD15_SUBFOLDER = "diffusion_sd15"   # that repo's root holds the SD 2.1 version
DEFAULT_PROMPT = "a photo of a person talking, natural skin, sharp focus"
DOCS = "see docs/gpu.md"

# region geometry, in units of the outer-eye-corner distance / the landmark box
MOUTH_BOX = 1.6        # side of the square around the lips
MOUTH_DROP = 0.1       # box centre below the lips' centre (takes in the chin)
FACE_MARGIN = 1.25     # face box side = longest side of the landmark box x this


class DiffusionRenderer:
    """Renderer protocol: `.frames(identity, motion, *, crop=False) -> Iterator[RGB uint8]`.

    spec: RendererSpec (base, controlnet, steps, strength, guidance, region, batch, allow_cpu).
    base: a renderer with `.frames_with_landmarks(identity, motion, *, crop)` (WarpRenderer).
    pipe: an already built StableDiffusionControlNetImg2ImgPipeline (else loaded lazily
          from spec.base / spec.controlnet, local files only).
    prompt_embeds: (1, 77, D) text embedding used for every frame; default: the
          pipeline's text encoder run once on `prompt`, or zeros when it has none.
    seed: the noise seed shared by all frames; temporal_blend: weight of the previous
          frame's latents at each step (0 = off); compile: torch.compile the UNet (CUDA).
    """

    def __init__(self, spec: RendererSpec, base: Renderer, *, pipe: Any = None,
                 prompt: str = DEFAULT_PROMPT, prompt_embeds: Any = None, seed: int = 0,
                 temporal_blend: float = 0.2, compile: bool = False, device: str | None = None):
        if not hasattr(base, "frames_with_landmarks"):
            raise TypeError("DiffusionRenderer needs a base renderer with frames_with_landmarks()")
        if not 0.0 <= temporal_blend < 1.0:
            raise ValueError("temporal_blend must be in [0, 1)")
        self.spec, self.base = spec, base
        self.prompt, self.seed, self.temporal_blend, self.compile = prompt, seed, temporal_blend, compile
        self.device = device or _pick_device(spec)
        self._pipe, self._embeds = pipe, prompt_embeds

    @classmethod
    def from_components(cls, spec: RendererSpec, base: Renderer, components: dict, **kwargs) -> "DiffusionRenderer":
        """Build the pipeline from ready modules: unet, controlnet, vae, scheduler and
        optionally text_encoder + tokenizer (None: pass prompt_embeds, or zeros are used)."""
        from diffusers import StableDiffusionControlNetImg2ImgPipeline

        parts = {"text_encoder": None, "tokenizer": None, "safety_checker": None,
                 "feature_extractor": None, "image_encoder": None, **components}
        pipe = StableDiffusionControlNetImg2ImgPipeline(**parts, requires_safety_checker=False)
        return cls(spec, base, pipe=pipe, **kwargs)

    # ------------------------------------------------------------------ setup
    def _ready(self):
        """(pipeline on self.device, (prompt_embeds, negative_embeds or None)), built once."""
        import torch

        if self._pipe is None:
            self._pipe = load_pipeline(self.spec.base or DEFAULT_BASE, self.spec.controlnet or DEFAULT_CONTROLNET,
                                       self.device)
        pipe = self._pipe
        if pipe.device.type != self.device.split(":")[0]:
            pipe.to(self.device)
        pipe.set_progress_bar_config(disable=True)
        if self.compile and self.device.startswith("cuda") and not hasattr(pipe.unet, "_orig_mod"):
            pipe.unet = torch.compile(pipe.unet)
        if not isinstance(self._embeds, tuple):
            self._embeds = _prompt_embeddings(pipe, self.prompt, self._embeds, self.spec.guidance > 1.0)
        return pipe, self._embeds

    # ------------------------------------------------------------------ rendering
    def frames(self, identity: Identity, motion: Motion, *, crop: bool = False) -> Iterator[np.ndarray]:
        pipe, embeds = self._ready()
        blender = _LatentBlender(self.temporal_blend)
        track = None
        batch: list[tuple[np.ndarray, np.ndarray]] = []
        for frame, lm in self.base.frames_with_landmarks(identity, motion, crop=crop):
            if track is None:   # region size and place fixed to the head from the first frame
                track = region_track(lm, self.spec.region)
            batch.append((frame, lm))
            if len(batch) == self.spec.batch:
                yield from self._render_batch(pipe, embeds, batch, track, blender)
                batch = []
        if batch:
            yield from self._render_batch(pipe, embeds, batch, track, blender)

    def _render_batch(self, pipe, embeds, batch, track, blender) -> Iterator[np.ndarray]:
        import cv2
        import torch
        from PIL import Image

        from avatar.renderers.landmark_image import face_condition_image

        res = model_resolution(pipe)
        boxes, inits, conds = [], [], []
        for frame, lm in batch:
            x0, y0, s = region_box(lm, frame.shape[:2], track)
            boxes.append((x0, y0, s))
            patch = frame[y0:y0 + s, x0:x0 + s]
            inits.append(Image.fromarray(cv2.resize(patch, (res, res), interpolation=cv2.INTER_AREA if s > res else cv2.INTER_CUBIC)))
            local = (np.asarray(lm, np.float64)[:, :2] - (x0, y0)) * (res / s)
            conds.append(Image.fromarray(face_condition_image(local, (res, res))))
        n = len(batch)
        pos, neg = embeds
        kwargs = {}
        if neg is not None:
            kwargs["negative_prompt_embeds"] = neg.expand(n, -1, -1)
        try:
            out = pipe(image=inits, control_image=conds, height=res, width=res,
                       strength=self.spec.strength, num_inference_steps=schedule_length(self.spec.steps, self.spec.strength),
                       guidance_scale=self.spec.guidance, prompt_embeds=pos.expand(n, -1, -1),
                       generator=[torch.Generator("cpu").manual_seed(self.seed) for _ in range(n)],
                       output_type="np", callback_on_step_end=blender, **kwargs).images
        except torch.cuda.OutOfMemoryError as e:
            raise AvatarError("the diffusion renderer ran out of GPU memory", field="avatar.renderer.batch",
                              hint=f"lower avatar.renderer.batch (now {self.spec.batch}) or use region: mouth") from e
        for (frame, lm), (x0, y0, s), img in zip(batch, boxes, out):
            gen = (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
            if s != res:
                gen = cv2.resize(gen, (s, s), interpolation=cv2.INTER_AREA if s < res else cv2.INTER_CUBIC)
            mask = region_mask(lm, x0, y0, s, self.spec.region)
            yield paste(frame, gen, mask, x0, y0)


# ---------------------------------------------------------------------- helpers (pure numpy)
def schedule_length(steps: int, strength: float) -> int:
    """Scheduler length so that img2img at `strength` runs exactly `steps` denoising steps
    (diffusers runs int(num_inference_steps * strength) of them)."""
    n = max(steps, math.ceil(steps / strength))
    while int(n * strength) < steps:
        n += 1
    return n


# rigid points (eye corners, nose bridge): they move with the head, not with the mouth or eyelids
ANCHORS = [33, 133, 362, 263, 168, 6]


def _region_side(lm: np.ndarray, region: str) -> int:
    lm = np.asarray(lm, np.float64)
    if region == "mouth":
        side = MOUTH_BOX * float(eye_distance(lm))
    else:
        side = FACE_MARGIN * float(np.max(lm[:, :2].max(0) - lm[:, :2].min(0)))
    return max(8, int(round(side)))


def _region_centre(lm: np.ndarray, region: str) -> np.ndarray:
    lm = np.asarray(lm, np.float64)[:, :2]
    if region == "mouth":
        from avatar.face.measure import MOUTH_CORNERS, INNER_LIP

        c = lm[list(MOUTH_CORNERS) + list(INNER_LIP)].mean(0)
        return c + (0.0, MOUTH_DROP * float(eye_distance(lm)))
    return (lm.min(0) + lm.max(0)) / 2


def region_track(first: np.ndarray, region: str) -> tuple[int, np.ndarray]:
    """(side, offset from the anchor points' mean to the region centre), from the first
    frame's landmarks: the region then follows the head but not the opening jaw."""
    first = np.asarray(first, np.float64)
    return _region_side(first, region), _region_centre(first, region) - first[ANCHORS, :2].mean(0)


def region_box(lm: np.ndarray, shape: tuple[int, int], track: tuple[int, np.ndarray]) -> tuple[int, int, int]:
    """(x0, y0, side) of this frame's square region, moved (and shrunk if needed) to lie inside the image."""
    side, offset = track
    h, w = shape
    s = int(min(side, h, w))
    cx, cy = np.asarray(lm, np.float64)[ANCHORS, :2].mean(0) + offset
    x0 = int(np.clip(round(cx - s / 2), 0, w - s))
    y0 = int(np.clip(round(cy - s / 2), 0, h - s))
    return x0, y0, s


def region_mask(lm: np.ndarray, x0: int, y0: int, s: int, region: str) -> np.ndarray:
    """(s, s) float32 feathered 0..1 blend mask, exactly 0 on the region's border ring."""
    import cv2

    feather = max(1.0, 0.04 * s)
    m = np.zeros((s, s), np.float32)
    if region == "mouth":
        r = int(0.5 * s - 3 * feather)
        cv2.ellipse(m, (s // 2, s // 2), (max(r, 1), max(int(r * 0.8), 1)), 0, 0, 360, 1.0, -1)
    else:
        pts = (np.asarray(lm, np.float64)[:, :2] - (x0, y0)).astype(np.int32)
        cv2.fillConvexPoly(m, cv2.convexHull(pts), 1.0)
        m = cv2.erode(m, np.ones((3, 3), np.uint8), iterations=max(1, int(feather)))
    m = cv2.GaussianBlur(m, (0, 0), feather)
    b = max(1, int(math.ceil(feather)))
    m[:b], m[-b:], m[:, :b], m[:, -b:] = 0, 0, 0, 0
    return m


def paste(frame: np.ndarray, patch: np.ndarray, mask: np.ndarray, x0: int, y0: int) -> np.ndarray:
    """frame with `patch` blended in at (x0, y0) by `mask`; pixels where mask == 0 are copied exactly."""
    out = frame.copy()
    s = mask.shape[0]
    region = out[y0:y0 + s, x0:x0 + s]
    a = mask[..., None]
    blended = (a * patch.astype(np.float32) + (1.0 - a) * region.astype(np.float32) + 0.5).astype(np.uint8)
    out[y0:y0 + s, x0:x0 + s] = np.where(a > 0, blended, region)
    return out


# ---------------------------------------------------------------------- torch / diffusers
class _LatentBlender:
    """callback_on_step_end: blend each frame's latents with the previous frame's at the
    same step (within a batch and across batches of one render)."""

    def __init__(self, weight: float):
        self.weight, self.last = weight, {}

    def __call__(self, pipe, step: int, timestep, kwargs: dict) -> dict:
        if self.weight <= 0:
            return kwargs
        lat = kwargs["latents"]
        prev = self.last.get(step)
        rows = []
        for i in range(lat.shape[0]):
            cur = lat[i]
            if prev is not None:
                cur = (1.0 - self.weight) * cur + self.weight * prev
            rows.append(cur)
            prev = cur
        self.last[step] = prev.detach().clone()
        import torch

        return {"latents": torch.stack(rows, 0)}


def model_resolution(pipe) -> int:
    """Pixels of the square the model works at (SD 1.5: 64 latent x 8 = 512)."""
    return int(pipe.unet.config.sample_size) * int(pipe.vae_scale_factor)


def _prompt_embeddings(pipe, prompt: str, given, with_negative: bool):
    import torch

    dtype, device = pipe.unet.dtype, pipe.device
    if given is not None:
        pos = torch.as_tensor(given).to(device, dtype)
        neg = torch.zeros_like(pos) if with_negative else None
        return pos, neg
    if pipe.text_encoder is None or pipe.tokenizer is None:
        dim = int(pipe.unet.config.cross_attention_dim)
        pos = torch.zeros((1, 77, dim), device=device, dtype=dtype)
        return pos, (torch.zeros_like(pos) if with_negative else None)
    with torch.no_grad():
        pos, neg = pipe.encode_prompt(prompt, device, 1, with_negative, negative_prompt="")
    return pos.to(dtype), (neg.to(dtype) if with_negative else None)


def _pick_device(spec: RendererSpec) -> str:
    try:
        import torch
    except ImportError as e:   # the core install has no torch
        raise AvatarError(f"the diffusion renderer needs torch ({e.name} is missing)", field="avatar.renderer.name",
                          hint="pip install 'avatar-presenter[gpu]', or use renderer name: warp") from None
    if torch.cuda.is_available():
        return "cuda"
    if not spec.allow_cpu:
        raise AvatarError("the diffusion renderer needs a CUDA GPU and none was found", field="avatar.renderer.name",
                          hint="use renderer name: warp, or set avatar.renderer.allow_cpu: true to run it very slowly on the CPU")
    return "cpu"


def _is_path(ref: str) -> bool:
    return ref.startswith((".", "/", "~")) or Path(ref).expanduser().exists() or ref.count("/") > 1 or "\\" in ref


def _missing(what: str, ref: str, field: str, extra: str = "") -> AvatarError:
    if _is_path(ref):
        return AvatarError(f"{what} weights not found in {ref}", field=field,
                           hint=f"put the diffusers folder of {what} there; {DOCS}")
    return AvatarError(f"{what} weights not found: {ref} is neither a local folder nor in the Hugging Face cache",
                       field=field, hint=f"download them once with: hf download {ref}{extra} "
                                         f"(into the Hugging Face cache), or point {field} at a local folder; {DOCS}")


def _from_pretrained(cls, ref: str, what: str, field: str, dtype, subfolder: str | None = None, **kw):
    """cls.from_pretrained from local files only, fp16 variant first on CUDA (load_pipeline
    has already checked that a local folder `ref` exists)."""
    path = str(Path(ref).expanduser()) if _is_path(ref) else ref
    variants = ["fp16", None] if dtype is not None and str(dtype).endswith("float16") else [None, "fp16"]
    last: Exception | None = None
    for variant in variants:
        try:
            return cls.from_pretrained(path, subfolder=subfolder, dtype=dtype, variant=variant,
                                       local_files_only=True, **kw)
        except (OSError, ValueError) as e:   # not in the cache / folder, or no such variant
            last = e
    extra = f" --include '{subfolder}/*'" if subfolder else ""
    raise _missing(what, ref, field, extra) from last


def _controlnet_subfolder(ref: str) -> str | None:
    if ref == DEFAULT_CONTROLNET:
        return CONTROLNET_SD15_SUBFOLDER
    if _is_path(ref) and (Path(ref).expanduser() / CONTROLNET_SD15_SUBFOLDER / "config.json").exists():
        return CONTROLNET_SD15_SUBFOLDER
    return None


@lru_cache(maxsize=2)
def load_pipeline(base: str, controlnet: str, device: str):
    """StableDiffusionControlNetImg2ImgPipeline from local files: fp16, channels_last and
    SDPA attention on CUDA, DDIM sampler; one per (base, controlnet, device) per process."""
    try:
        import torch
        from diffusers import ControlNetModel, DDIMScheduler, StableDiffusionControlNetImg2ImgPipeline
    except ImportError as e:
        raise AvatarError(f"the diffusion renderer needs diffusers and transformers ({e.name} is missing)",
                          hint="pip install 'avatar-presenter[gpu]'") from e
    for ref, what, field in ((base, "Stable Diffusion 1.5 base", "avatar.renderer.base"),
                             (controlnet, "ControlNet", "avatar.renderer.controlnet")):
        if _is_path(ref) and not Path(ref).expanduser().exists():
            raise _missing(what, ref, field)
    cuda = device.startswith("cuda")
    dtype = torch.float16 if cuda else torch.float32
    cn = _from_pretrained(ControlNetModel, controlnet, "ControlNet", "avatar.renderer.controlnet", dtype,
                          subfolder=_controlnet_subfolder(controlnet))
    pipe = _from_pretrained(StableDiffusionControlNetImg2ImgPipeline, base, "Stable Diffusion 1.5 base",
                            "avatar.renderer.base", dtype, controlnet=cn, safety_checker=None,
                            feature_extractor=None, requires_safety_checker=False)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.to(device)
    if cuda:   # torch 2 uses scaled-dot-product attention by default in diffusers
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.controlnet.to(memory_format=torch.channels_last)
    return pipe
