"""The core install has no torch: what needs it says which extra brings it, in one line."""
import sys

import pytest

from avatar.errors import AvatarError


@pytest.fixture
def no_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)      # `import torch` -> ImportError


def test_diffusion_renderer_without_torch_names_the_gpu_extra(no_torch):
    from avatar.renderers.diffusion import _pick_device
    from avatar.script.models import RendererSpec

    with pytest.raises(AvatarError, match=r"needs torch.*avatar-presenter\[gpu\]") as e:
        _pick_device(RendererSpec(name="diffusion"))
    assert "\n" not in str(e.value)


def test_lips_training_and_export_without_torch_name_the_train_extra(no_torch, tmp_path, capsys):
    from avatar.cli import main

    for args in (["lips", "export", str(tmp_path / "m.safetensors")], ["lips", "train", "--steps", "1"]):
        with pytest.raises(SystemExit) as e:
            main(args)
        err = capsys.readouterr().err
        assert e.value.code != 0 and err.count("\n") == 1
        assert "need torch" in err and "avatar-presenter[train]" in err
