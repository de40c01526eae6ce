"""Diffusion renderer: the real diffusers pipeline on tiny random-weight components (CPU)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("diffusers")
torch = pytest.importorskip("torch")

from avatar.errors import AvatarError  # noqa: E402
from avatar.renderers import diffusion as dr  # noqa: E402
from avatar.renderers.landmark_image import PUPILS, face_condition_image  # noqa: E402
from avatar.script.models import RendererSpec  # noqa: E402
from avatar.types import Identity, Motion  # noqa: E402

SIZE = 192   # test photo side (pixels)


@pytest.fixture(scope="module")
def face(astronaut_path):
    """(image (SIZE, SIZE, 3) uint8, landmarks (478, 3) in its pixels), from MediaPipe itself."""
    import cv2
    import mediapipe as mp

    big = cv2.cvtColor(cv2.imread(str(astronaut_path)), cv2.COLOR_BGR2RGB)
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1) as fm:
        res = fm.process(big)
    pts = np.array([(p.x, p.y, p.z) for p in res.multi_face_landmarks[0].landmark], np.float32)
    img = cv2.resize(big, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    return img, pts * SIZE


@pytest.fixture(scope="module")
def identity(face):
    img, lm = face
    h, w = img.shape[:2]
    ones = np.ones((h, w), np.float32)
    return Identity(image=img, landmarks=lm, face_box=(0, 0, w, h), face_mask=ones, person_mask=ones)


class FakeBase:
    """Stands in for WarpRenderer: the photo with the lower lip moved by motion.mouth[:, 0]."""

    def __init__(self, move_landmarks: bool = True):
        self.move_landmarks = move_landmarks

    def frames_with_landmarks(self, identity, motion, *, crop=False):
        for t in range(len(motion)):
            lm = identity.landmarks[:, :2].copy()
            drop = motion.mouth[t, 0] * identity.eye_distance
            lm[14, 1] += drop * self.move_landmarks
            img = identity.image.copy()
            x, y = lm[14].astype(int)
            img[y - 2:y + 2 + int(drop), x - 4:x + 4] = 30   # a dark mouth opening
            yield img, lm

    def frames(self, identity, motion, *, crop=False):
        for img, _ in self.frames_with_landmarks(identity, motion, crop=crop):
            yield img


def tiny_components(seed: int = 0) -> dict:
    """Random-weight modules shaped like diffusers' own ControlNet img2img test components."""
    from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, UNet2DConditionModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(block_out_channels=(8, 16), layers_per_block=1, sample_size=32, in_channels=4,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=16,
                                norm_num_groups=1, attention_head_dim=4)
    controlnet = ControlNetModel(block_out_channels=(8, 16), layers_per_block=1, in_channels=4,
                                 down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), cross_attention_dim=16,
                                 conditioning_embedding_out_channels=(8, 16), norm_num_groups=1, attention_head_dim=4)
    vae = AutoencoderKL(block_out_channels=[8, 16], in_channels=3, out_channels=3,
                        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                        latent_channels=4, norm_num_groups=1)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False)
    return {"unet": unet.eval(), "controlnet": controlnet.eval(), "vae": vae.eval(), "scheduler": scheduler}


def make(components, **spec_kw):
    spec = RendererSpec(**{"name": "diffusion", "allow_cpu": True, "steps": 2, "strength": 0.5, "batch": 2, **spec_kw})
    return dr.DiffusionRenderer.from_components(spec, FakeBase(), components)


def talking(n=3):
    m = Motion.rest(n, 25)
    m.mouth[:, 0] = np.linspace(0.0, 0.3, n)
    return m


@pytest.fixture(scope="module")
def components():
    return tiny_components()


# ---------------------------------------------------------------------------- conditioning image
def test_condition_image_draws_the_face_on_black(face):
    img, lm = face
    cond = face_condition_image(lm, img.shape[:2])
    assert cond.shape == img.shape and cond.dtype == np.uint8
    lit = cond.any(-1)
    ys, xs = np.nonzero(lit)
    (x0, y0), (x1, y1) = lm[:, :2].min(0), lm[:, :2].max(0)
    assert lit.sum() > 200                                            # contours were drawn
    assert xs.min() >= x0 - 3 and xs.max() <= x1 + 3 and ys.min() >= y0 - 3 and ys.max() <= y1 + 3
    assert lit.mean() < 0.2                                           # black everywhere else
    for idx, colour in PUPILS.items():                                # the pupil squares
        x, y = np.floor(lm[idx, :2]).astype(int)
        assert tuple(cond[y, x]) == colour
    lips = cond[int(lm[0, 1]) - 1:int(lm[17, 1]) + 2, int(lm[61, 0]):int(lm[291, 0]) + 1]
    assert (np.all(lips == (10, 180, 10), axis=-1)).sum() > 10        # lips in the annotator's green


def test_condition_image_off_canvas_is_empty(face):
    _, lm = face
    far = lm.copy()
    far[:, :2] += 10_000
    assert not face_condition_image(far, (64, 64)).any()


# ---------------------------------------------------------------------------- frames
def test_mouth_region_frames(identity, components):
    frames = list(FakeBase().frames_with_landmarks(identity, talking()))
    out = list(make(components).frames(identity, talking()))
    track = dr.region_track(frames[0][1], "mouth")
    boxes = {dr.region_box(lm, b.shape[:2], track) for b, lm in frames}
    assert len(boxes) == 1                                           # the region does not ride the jaw
    x0, y0, s = boxes.pop()
    assert len(out) == 3
    for a, (b, _) in zip(out, frames):
        assert a.shape == b.shape and a.dtype == np.uint8
        outside = np.ones(b.shape[:2], bool)
        outside[y0:y0 + s, x0:x0 + s] = False
        assert np.array_equal(a[outside], b[outside])                # untouched outside the region
        assert np.abs(a[y0:y0 + s, x0:x0 + s].astype(int) - b[y0:y0 + s, x0:x0 + s]).max() > 10  # diffused inside


def test_region_follows_the_head(identity):
    lm = identity.landmarks
    track = dr.region_track(lm, "mouth")
    x0, y0, s = dr.region_box(lm, (SIZE, SIZE), track)
    moved = lm.copy()
    moved[:, :2] += (7, -5)
    assert dr.region_box(moved, (SIZE, SIZE), track) == (x0 + 7, y0 - 5, s)
    mouth = lm[[61, 291, 13, 14], :2].mean(0)
    assert x0 < mouth[0] < x0 + s and y0 < mouth[1] < y0 + s
    # near the border the box slides inside the image and keeps its size
    assert dr.region_box(moved - (0, 1000, 0), (SIZE, SIZE), track) == (x0 + 7, 0, s)


def test_face_region_frames(identity, components):
    out = list(make(components, region="face", batch=3).frames(identity, talking(2)))
    base = list(FakeBase().frames(identity, talking(2)))
    lm = identity.landmarks
    x0, y0, s = dr.region_box(lm, base[0].shape[:2], dr.region_track(lm, "face"))
    assert s > dr.region_track(lm, "mouth")[0]
    outside = np.ones(base[0].shape[:2], bool)
    outside[y0:y0 + s, x0:x0 + s] = False
    assert np.array_equal(out[0][outside], base[0][outside])
    assert not np.array_equal(out[0], base[0])


def test_same_seed_same_frames_other_seed_differs(identity, components):
    a = list(make(components).frames(identity, talking(2)))
    b = list(make(components).frames(identity, talking(2)))
    spec = RendererSpec(name="diffusion", allow_cpu=True, steps=2, strength=0.5, batch=2)
    c = list(dr.DiffusionRenderer.from_components(spec, FakeBase(), components, seed=7).frames(identity, talking(2)))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_temporal_blend_pulls_frames_together(identity, components):
    spec = RendererSpec(name="diffusion", allow_cpu=True, steps=2, strength=0.6, batch=4)
    still = Motion.rest(4, 25)
    still.mouth[1::2, 0] = 0.3   # the mouth flips open / shut every frame

    def flicker(weight):
        r = dr.DiffusionRenderer.from_components(spec, FakeBase(move_landmarks=False), components,
                                                 temporal_blend=weight)
        f = np.stack(list(r.frames(identity, still))).astype(np.float32)
        return np.abs(np.diff(f, axis=0)).mean()

    assert flicker(0.6) < flicker(0.0)


def test_prompt_embeddings_are_used(identity, components):
    spec = RendererSpec(name="diffusion", allow_cpu=True, steps=2, strength=0.5)
    emb = torch.randn(1, 77, 16, generator=torch.Generator().manual_seed(1))
    a = next(dr.DiffusionRenderer.from_components(spec, FakeBase(), components).frames(identity, talking(1)))
    b = next(dr.DiffusionRenderer.from_components(spec, FakeBase(), components, prompt_embeds=emb)
             .frames(identity, talking(1)))
    assert not np.array_equal(a, b)


def test_guidance_above_one_runs_classifier_free_guidance(identity, components):
    emb = torch.randn(1, 77, 16, generator=torch.Generator().manual_seed(2))

    def render(guidance):
        spec = RendererSpec(name="diffusion", allow_cpu=True, steps=2, strength=0.5, guidance=guidance)
        r = dr.DiffusionRenderer.from_components(spec, FakeBase(), components, prompt_embeds=emb)
        return next(r.frames(identity, talking(1)))

    one, cfg = render(1.0), render(4.0)       # 4.0: (prompt - empty) pushed 4x
    assert cfg.shape == one.shape and not np.array_equal(one, cfg)


def test_schedule_length_runs_exactly_the_asked_steps():
    for steps in (1, 2, 3, 4, 7, 8, 20):
        for strength in (0.1, 0.3, 0.35, 0.5, 0.7, 1.0):
            n = dr.schedule_length(steps, strength)
            assert min(int(n * strength), n) == steps
            assert n == steps or int((n - 1) * strength) < steps   # the shortest such schedule


# ---------------------------------------------------------------------------- errors
def test_cpu_without_allow_cpu_is_a_clear_error(components, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(AvatarError, match="allow_cpu"):
        dr.DiffusionRenderer.from_components(RendererSpec(name="diffusion"), FakeBase(), components)


def test_missing_local_weights_name_the_folder(tmp_path):
    spec = RendererSpec(name="diffusion", allow_cpu=True, base=str(tmp_path / "sd15"))
    r = dr.DiffusionRenderer(spec, FakeBase())
    with pytest.raises(AvatarError) as e:
        list(r.frames(None, Motion.rest(1, 25)))
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("avatar.renderer.base: ") and str(tmp_path / "sd15") in msg


def test_missing_controlnet_says_what_to_download(tmp_path, monkeypatch):
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    r = dr.DiffusionRenderer(RendererSpec(name="diffusion", allow_cpu=True), FakeBase())
    with pytest.raises(AvatarError) as e:
        list(r.frames(None, Motion.rest(1, 25)))
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("avatar.renderer.controlnet: ")
    assert "hf download CrucibleAI/ControlNetMediaPipeFace --include 'diffusion_sd15/*'" in msg


def test_missing_hub_weights_say_what_to_download(tmp_path, monkeypatch):
    import huggingface_hub.constants as hc

    cn = tmp_path / "controlnet"
    tiny_components()["controlnet"].save_pretrained(cn)           # the ControlNet is there, the base is not
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    spec = RendererSpec(name="diffusion", allow_cpu=True, base="someone/not-downloaded", controlnet=str(cn))
    with pytest.raises(AvatarError, match=r"avatar.renderer.base: .*hf download someone/not-downloaded"):
        list(dr.DiffusionRenderer(spec, FakeBase()).frames(None, Motion.rest(1, 25)))


def test_missing_diffusers_package_says_which_extra(monkeypatch):
    import sys

    dr.load_pipeline.cache_clear()
    monkeypatch.setitem(sys.modules, "diffusers", None)
    with pytest.raises(AvatarError, match=r"avatar-presenter\[gpu\]"):
        dr.load_pipeline("a/b", "c/d", "cpu")


def test_base_without_landmarks_is_rejected():
    class Plain:
        def frames(self, identity, motion, *, crop=False):
            return iter(())

    with pytest.raises(TypeError):
        dr.DiffusionRenderer(RendererSpec(name="diffusion", allow_cpu=True), Plain())


# ---------------------------------------------------------------------------- end to end (real face + warp)
def test_end_to_end_over_the_real_warp_renderer(astronaut_path, components):
    from avatar.face import load_identity
    from avatar.renderers.warp import WarpRenderer

    ident = load_identity(astronaut_path)
    motion = talking(3)
    spec = RendererSpec(name="diffusion", allow_cpu=True, steps=2, strength=0.5, batch=2)
    for crop in (False, True):
        warp = list(WarpRenderer().frames_with_landmarks(ident, motion, crop=crop))
        out = list(dr.DiffusionRenderer.from_components(spec, WarpRenderer(), components).frames(ident, motion, crop=crop))
        track = dr.region_track(warp[0][1], "mouth")
        assert len(out) == len(warp) == 3
        for a, (b, lm) in zip(out, warp):
            assert a.shape == b.shape and a.dtype == np.uint8
            x0, y0, s = dr.region_box(lm, b.shape[:2], track)
            keep = np.ones(b.shape[:2], bool)
            keep[y0:y0 + s, x0:x0 + s] = False
            assert np.array_equal(a[keep], b[keep]) and not np.array_equal(a, b)


def test_get_renderer_diffusion_on_cpu_asks_for_allow_cpu(monkeypatch):
    from avatar.renderers import get_renderer

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(AvatarError, match="allow_cpu"):
        get_renderer(RendererSpec(name="diffusion"))
    assert isinstance(get_renderer(RendererSpec(name="diffusion", allow_cpu=True)), dr.DiffusionRenderer)


def tiny_text(folder) -> dict:
    """A tiny random CLIP text encoder and a CLIP tokenizer over a local 58-token vocabulary."""
    import json

    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in "abcdefghijklmnopqrstuvwxyz,.":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)
    torch.manual_seed(5)
    enc = CLIPTextModel(CLIPTextConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                       num_attention_heads=2, max_position_embeddings=77, bos_token_id=0,
                                       eos_token_id=1, pad_token_id=1)).eval()
    return {"text_encoder": enc, "tokenizer": tok}


def test_prompt_goes_through_the_text_encoder_once(tmp_path, identity, monkeypatch):
    parts = {**tiny_components(), **tiny_text(tmp_path / "tok")}
    spec = RendererSpec(name="diffusion", allow_cpu=True, steps=2, strength=0.5, batch=1)
    calls = []
    enc = parts["text_encoder"]
    monkeypatch.setattr(enc, "forward", lambda *a, _f=enc.forward, **k: calls.append(1) or _f(*a, **k))
    a = list(dr.DiffusionRenderer.from_components(spec, FakeBase(), parts, prompt="a smiling face").frames(identity, talking(3)))
    assert len(calls) == 1                                          # encoded once, reused for 3 frames
    b = list(dr.DiffusionRenderer.from_components(spec, FakeBase(), parts, prompt="zzz").frames(identity, talking(1)))
    assert not np.array_equal(a[0], b[0])


@pytest.mark.parametrize("variant", [None, "fp16"])
def test_loads_local_folders_through_the_real_loader(tmp_path, identity, variant):
    """save_pretrained folders (full or fp16-only files), ControlNet in a diffusion_sd15/ subfolder."""
    from diffusers import StableDiffusionControlNetImg2ImgPipeline

    parts = {**tiny_components(seed=3), **tiny_text(tmp_path / "tok")}
    pipe = StableDiffusionControlNetImg2ImgPipeline(**parts, safety_checker=None, feature_extractor=None,
                                                    image_encoder=None, requires_safety_checker=False)
    pipe.save_pretrained(tmp_path / "sd", variant=variant)
    parts["controlnet"].save_pretrained(tmp_path / "cn" / "diffusion_sd15", variant=variant)
    dr.load_pipeline.cache_clear()
    spec = RendererSpec(name="diffusion", allow_cpu=True, steps=2, strength=0.5,
                        base=str(tmp_path / "sd"), controlnet=str(tmp_path / "cn"))
    try:
        out = list(dr.DiffusionRenderer(spec, FakeBase()).frames(identity, talking(2)))
    finally:
        dr.load_pipeline.cache_clear()
    ref = list(dr.DiffusionRenderer.from_components(spec, FakeBase(), parts).frames(identity, talking(2)))
    assert all(np.array_equal(a, b) for a, b in zip(out, ref))     # the same weights came back
