"""The lips network in torch (training only) and its ONNX export for the runtime.

The runtime (avatar.motion.audio_model) never imports this module nor torch: it runs the
ONNX graph that `export_onnx` writes beside the safetensors checkpoint (PATH.onnx). The
GRU state is an explicit input/output of that graph, so long audio still runs in chunks
with the same result as one pass. The graph's metadata holds the sha256 of the
checkpoint it was exported from and the network's shape; the runtime checks both.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

from avatar.errors import AvatarError
from avatar.files import atomic_path, write_text
from avatar.motion.audio_model import (META_ARCH, META_SHA, OUT_SCALE, LipConfig, arch_json, config_path,
                                       file_sha256, load_config, onnx_path)

OPSET = 17
TORCH_HINT = "pip install 'avatar-presenter[train]'"


def require_torch():
    """torch, or a one-line AvatarError saying which extra brings it."""
    try:
        import torch
    except ImportError:
        raise AvatarError("training and exporting the lips network need torch", hint=TORCH_HINT) from None
    return torch


def build_network(cfg: LipConfig):
    """The torch module (generic over LipConfig)."""
    import torch
    from torch import nn

    class LipNet(nn.Module):
        def __init__(self):
            super().__init__()
            chans = [cfg.n_mels * cfg.stack] + [cfg.channels] * len(cfg.kernels)
            for k in cfg.kernels:
                if k % 2 == 0:
                    raise ValueError("kernels must be odd")
            self.convs = nn.ModuleList(nn.Conv1d(a, b, k) for a, b, k in zip(chans[:-1], chans[1:], cfg.kernels))
            self.gru = nn.GRU(cfg.channels, cfg.hidden, batch_first=True)
            self.out = nn.Linear(cfg.hidden, 2)
            self.register_buffer("scale", torch.tensor(OUT_SCALE, dtype=torch.float32), persistent=False)

        def forward(self, x, h=None):
            """x: (B, STACK * (T + 2 * context), n_mels) normalised features -> ((B, T, 2), h)."""
            b, n, m = x.shape
            x = x.reshape(b, n // cfg.stack, m * cfg.stack).transpose(1, 2)
            for conv in self.convs:
                x = torch.nn.functional.gelu(conv(x))
            y, h = self.gru(x.transpose(1, 2), h)
            return self.out(y) * self.scale, h

    return LipNet()


def save_model(net, cfg: LipConfig, path: str | Path) -> Path:
    """Write weights (safetensors), PATH.json (config) and PATH.onnx (the runtime graph), each atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    state = {k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"version": str(cfg.version)})
    write_text(config_path(path), cfg.to_json())
    export_onnx(path, net=net, cfg=cfg)
    return path


def load_network(path: str | Path):
    """(net, cfg) from a safetensors checkpoint and its JSON config (torch)."""
    from safetensors.torch import load_file

    path = Path(path)
    cfg = load_config(path)
    net = build_network(cfg)
    try:
        net.load_state_dict(load_file(str(path)))
    except Exception as e:
        raise AvatarError(f"lip-sync weights do not match their config ({str(e).splitlines()[0]})",
                          path=path, hint="retrain it with `avatar lips train`") from None
    return net.eval(), cfg


def export_onnx(path: str | Path, *, net=None, cfg: LipConfig | None = None) -> Path:
    """Export the checkpoint PATH (.safetensors) to PATH.onnx (atomically); returns the .onnx path.

    net/cfg: the network already in memory (else loaded from PATH)."""
    import onnx

    torch = require_torch()
    path = Path(path)
    if net is None or cfg is None:
        net, cfg = load_network(path)
    net.eval()
    ctx = cfg.context * cfg.stack
    x = torch.zeros(1, cfg.stack * 4 + 2 * ctx, cfg.n_mels)
    h = torch.zeros(1, 1, cfg.hidden)
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.inference_mode():
        # the TorchScript exporter: the torch.export one needs onnxscript, and this small graph needs nothing more
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x, h), buf, dynamo=False, opset_version=OPSET,
                          input_names=["features", "state"], output_names=["mouth", "next_state"],
                          dynamic_axes={"features": {0: "batch", 1: "frames"}, "state": {1: "batch"},
                                        "mouth": {0: "batch", 1: "time"}, "next_state": {1: "batch"}})
    model = onnx.load_from_string(buf.getvalue())
    onnx.helper.set_model_props(model, {META_SHA: file_sha256(path), META_ARCH: arch_json(cfg)})
    out = onnx_path(path)
    with atomic_path(out) as tmp:
        onnx.save(model, str(tmp))
    return out


class TorchSession:
    """An onnxruntime-session stand-in over the torch network: avatar.motion.audio_model.AudioMotionModel
    predicts with it during training (A/V offsets), before any ONNX graph exists."""

    def __init__(self, net):
        self.net = net.eval()

    def run(self, _outputs, feeds: dict):
        import torch

        with torch.inference_mode():
            y, h = self.net(torch.from_numpy(feeds["features"]), torch.from_numpy(feeds["state"]))
        return [y.numpy(), h.numpy()]
