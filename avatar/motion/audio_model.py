"""Audio -> mouth [open, width]: a small convolutional + GRU network on log-mel features.

Input: 16 kHz log-mel frames (avatar.motion.features, 100 frames/s, per-clip
normalised), stacked in pairs -> 50 model frames/s. Three 'valid' 1-D convolutions
see LipConfig.context model frames on each side (bounded look-ahead; the packaged
model: 8 frames = 160 ms), then a one-directional GRU carries the past. The packaged
model is trained with the mouth leading the sound by `lead` = 120 ms (real mouths move
before the sound they make; see the training notes in avatar.lips.train). Output: [open, width] in avatar.types.MOUTH_PARAMS
units at 50 Hz, resampled to any video frame rate. Because the convolutions are
'valid' over edge-padded features and the GRU is causal, long audio runs in chunks
(GRU state carried over, CONTEXT frames of overlap) with flat memory and the same
result as one pass.

Weights: avatar/data/lips.safetensors (safetensors, no pickle) + lips.json (config,
checked version), made by `avatar lips train` (avatar.lips.train). The runtime runs
lips.onnx beside them with onnxruntime (no torch): `avatar lips export` (avatar.lips.net)
writes it, with the GRU state as an explicit input/output and, in its metadata, the
sha256 of the checkpoint it came from and the network's shape, both checked at load.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from avatar.errors import AvatarError
from avatar.motion import features as F
from avatar.resources import data_dir
from avatar.types import Phoneme

FORMAT_VERSION = 1
DATA_DIR = data_dir()
DEFAULT_WEIGHTS = DATA_DIR / "lips.safetensors"
STACK = 2                      # feature frames per model frame
MODEL_RATE = F.FRAME_RATE / STACK   # 50 Hz
OUT_SCALE = (0.2, 0.05)        # network output x scale = [open, width] (keeps raw outputs ~unit size)
META_SHA = "checkpoint_sha256"   # ONNX metadata: sha256 of the .safetensors it was exported from
META_ARCH = "network"            # ONNX metadata: arch_json() of the config it was exported with
ARCH_FIELDS = ("n_mels", "stack", "channels", "hidden", "kernels")


@dataclass
class LipConfig:
    version: int = FORMAT_VERSION
    n_mels: int = F.N_MELS
    sample_rate: int = F.SAMPLE_RATE
    hop: int = F.HOP
    stack: int = STACK
    channels: int = 192
    hidden: int = 192
    kernels: tuple[int, ...] = (5, 5, 3)
    info: dict = field(default_factory=dict)     # how it was trained (command, data, loss)

    @property
    def context(self) -> int:
        """Model frames of look-ahead (and look-back) of the convolutions."""
        return sum((k - 1) // 2 for k in self.kernels)

    def to_json(self) -> str:
        d = asdict(self)
        d["kernels"] = list(self.kernels)
        return json.dumps(d, indent=2)

    @classmethod
    def from_json(cls, text: str) -> "LipConfig":
        d = json.loads(text)
        d["kernels"] = tuple(d.get("kernels", (5, 5, 3)))
        return cls(**d)


def arch_json(cfg: LipConfig) -> str:
    """The config fields that shape the network (what an exported graph must agree with)."""
    return json.dumps({k: list(v) if isinstance(v, tuple) else v
                       for k, v in asdict(cfg).items() if k in ARCH_FIELDS}, sort_keys=True)


def file_sha256(path: str | Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class AudioMotionModel:
    """Predicts mouth [open, width] per video frame from speech audio (an onnxruntime session)."""

    def __init__(self, session, cfg: LipConfig, n_params: int = 0):
        self.session = session
        self.cfg = cfg
        self.n_params = n_params        # weights in the graph (for reports)

    @property
    def lead(self) -> float:
        """Seconds the predicted mouth runs ahead of the sound (from training)."""
        return float(self.cfg.info.get("lead", 0.0) or 0.0)

    def track(self, audio: np.ndarray, sample_rate: int, chunk_frames: int = 1500) -> np.ndarray:
        """(T, 2) prediction at MODEL_RATE (model frame k centred at (2k + 0.5) * 10 ms)."""
        feats = F.model_features(audio, sample_rate)
        return self.track_features(feats, chunk_frames)

    def track_features(self, feats: np.ndarray, chunk_frames: int = 1500) -> np.ndarray:
        s, ctx = self.cfg.stack, self.cfg.context
        n = max(1, -(-len(feats) // s))            # model frames (ceil)
        feats = np.pad(np.asarray(feats, np.float32), ((s * ctx, s * (n + ctx) - len(feats)), (0, 0)), mode="edge")
        outs, h = [], np.zeros((1, 1, self.cfg.hidden), np.float32)
        for a in range(0, n, chunk_frames):
            b = min(n, a + chunk_frames)
            x = np.ascontiguousarray(feats[s * a: s * (b + 2 * ctx)])[None]
            y, h = self.session.run(None, {"features": x, "state": h})
            outs.append(y[0])
        return np.concatenate(outs).astype(np.float32)

    def predict(self, audio: np.ndarray, sample_rate: int, n_frames: int, fps: float,
                start: float = 0.0) -> np.ndarray:
        """(n_frames, 2) float32 [open, width] for video frames at `fps` (frame i at
        t = start + i / fps seconds into the audio)."""
        audio = np.asarray(audio, np.float32)
        if audio.size == 0 or n_frames <= 0:
            return np.zeros((max(0, n_frames), 2), np.float32)
        y = self.track(audio, sample_rate)
        t_in = (np.arange(len(y)) * self.cfg.stack + 0.5 * (self.cfg.stack - 1)) / F.FRAME_RATE
        t_out = start + np.arange(n_frames) / float(fps)
        out = np.stack([np.interp(t_out, t_in, y[:, c]) for c in range(2)], axis=1)
        out[:, 0] = np.maximum(out[:, 0], 0.0)
        return out.astype(np.float32)


def config_path(weights: str | Path) -> Path:
    return Path(weights).with_suffix(".json")


def onnx_path(weights: str | Path) -> Path:
    return Path(weights).with_suffix(".onnx")


def load_config(path: str | Path = DEFAULT_WEIGHTS) -> LipConfig:
    """The checked JSON config of the checkpoint PATH (.safetensors)."""
    path = Path(path)
    cpath = config_path(path)
    if not path.is_file() or not cpath.is_file():
        raise AvatarError("lip-sync model not found", path=path,
                          hint="reinstall the package or train one with `avatar lips train`")
    cfg = LipConfig.from_json(cpath.read_text(encoding="utf-8"))
    if cfg.version != FORMAT_VERSION:
        raise AvatarError(f"lip-sync model format {cfg.version}, this version reads {FORMAT_VERSION}",
                          path=cpath, hint="retrain it with `avatar lips train`")
    return cfg


@lru_cache(maxsize=4)
def load_model(path: str | Path = DEFAULT_WEIGHTS) -> AudioMotionModel:
    """The audio model (cached per path) from PATH.onnx, checked against the checkpoint PATH and
    its config; default: the packaged avatar/data/lips.safetensors."""
    import onnx
    import onnxruntime as ort

    path = Path(path)
    cfg = load_config(path)
    gpath = onnx_path(path)
    hint = f"export it again: avatar lips export {path}"
    if not gpath.is_file():
        raise AvatarError("lip-sync ONNX graph not found", path=gpath, hint=hint)
    try:
        graph = onnx.load(str(gpath))
    except Exception as e:
        raise AvatarError(f"not a readable ONNX graph ({str(e).splitlines()[0] if str(e) else type(e).__name__})",
                          path=gpath, hint=hint) from None
    meta = {p.key: p.value for p in graph.metadata_props}
    if meta.get(META_SHA) != file_sha256(path):
        raise AvatarError(f"lip-sync ONNX graph was not exported from {path.name} (checkpoint sha256 differs)",
                          path=gpath, hint=hint)
    if meta.get(META_ARCH) != arch_json(cfg):
        raise AvatarError(f"lip-sync ONNX graph does not match its config {config_path(path).name}",
                          path=gpath, hint=hint)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1   # a small network: one thread, no pool
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    session = ort.InferenceSession(graph.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    n_params = sum(int(np.prod(t.dims)) for t in graph.graph.initializer)
    return AudioMotionModel(session, cfg, n_params)


# ----------------------------------------------------------------------------- hybrid
CLOSE_RAMP = 0.04     # s, raised-cosine ramp into and out of a forced closure


def hybrid_mouth(model_mouth: np.ndarray, phonemes: list[Phoneme], n_frames: int, fps: float,
                 lead: float = 0.0) -> np.ndarray:
    """The model's mouth with the known text's constraints: lips closed at the centre of
    every p/b/m, mouth closed and relaxed in pauses and before/after the speech.
    lead: seconds the model's mouth runs ahead of the sound (AudioMotionModel.lead);
    the forced closures move earlier by the same amount so both agree."""
    from avatar.motion.rig import SILENCE_MIN, _envelope
    from avatar.motion.visemes import viseme_for

    mouth = np.array(model_mouth, np.float32).reshape(-1, 2)[:n_frames]
    if len(mouth) < n_frames:
        mouth = np.pad(mouth, ((0, n_frames - len(mouth)), (0, 0)))
    t = np.arange(n_frames) / float(fps)
    timed = [(p.start - lead, p.end - lead, viseme_for(p.symbol)) for p in phonemes if p.end >= p.start]
    sounds = [(s, e) for s, e, v in timed if v is not None and v.name != "sil"]
    if not sounds:
        return np.zeros((n_frames, 2), np.float32)
    half = 0.55 / fps
    lips = np.zeros(n_frames)
    shut = np.maximum(_envelope(t, -np.inf, sounds[0][0] - 0.03, CLOSE_RAMP * 2),
                      _envelope(t, max(e for _, e in sounds) + 0.03, np.inf, CLOSE_RAMP * 2))
    for s, e, v in timed:
        if v is None:
            continue
        if v.closure:
            c, h = (s + e) / 2, max(0.3 * (e - s), half)
            lips = np.maximum(lips, _envelope(t, c - h, c + h, CLOSE_RAMP))
        elif v.name == "sil" and e - s >= SILENCE_MIN:
            shut = np.maximum(shut, _envelope(t, s + CLOSE_RAMP, e - CLOSE_RAMP, CLOSE_RAMP))
    mouth[:, 0] *= 1.0 - np.maximum(lips, shut)
    mouth[:, 1] *= 1.0 - shut
    return mouth.astype(np.float32)


def audio_motion(speech, fps: float, *, hybrid: bool = True, seed: int = 0, still: bool = False,
                 expression_scale: float = 1.0, model: AudioMotionModel | None = None):
    """Motion for a Speech from its audio (avatar.motion.idle adds blinks, head, brows).
    hybrid=True and the Speech has phonemes -> closures forced by hybrid_mouth."""
    from avatar.motion.idle import add_idle
    from avatar.types import Motion

    n = Motion.frame_count(speech.duration, fps)
    model = model or load_model()
    mouth = model.predict(speech.audio, speech.sample_rate, n, fps)
    if hybrid and speech.phonemes:
        mouth = hybrid_mouth(mouth, speech.phonemes, n, fps, lead=model.lead)
    return add_idle(mouth, speech, fps, seed=seed, still=still, expression_scale=expression_scale)
