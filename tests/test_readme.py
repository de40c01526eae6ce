"""The README's Python API example runs as written (in a scratch folder with a starter talk.yaml)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def _api_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_readme_python_api_example_runs(tmp_path):
    from avatar.script.starter import write_starter

    write_starter("talk", tmp_path)
    code = _api_example()
    assert "avatar.render(" in code and "Presenter(" in code
    env = {"AVATAR_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    for name in ("talk.mp4", "talk.srt", "hello.mp4", "talk.wav", "bye.mp4"):
        assert (tmp_path / name).stat().st_size > 0, name
