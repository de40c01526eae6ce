#!/usr/bin/env bash
# What a user installs: build the wheel from this checkout, install it (no extras) into a fresh
# virtual environment outside the checkout, and run the core commands from another folder.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "wheel check: building the wheel"
"$PY" -m pip wheel -q --no-deps -w "$work/dist" . 2>&1 | grep -v '^WARNING: Location' || true
ls "$work"/dist/*.whl >/dev/null
"$PY" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
"$work/venv/bin/python" -m pip install -q "$work"/dist/*.whl 2>&1 | grep -v '^WARNING: Location' || true
avatar="$work/venv/bin/avatar"
mkdir "$work/elsewhere" && cd "$work/elsewhere"
export AVATAR_CACHE="$work/cache"
set -x
"$avatar" --version
"$avatar" voices > voices.txt
grep -q '^joe ' voices.txt
"$avatar" init talk
"$avatar" check talk.yaml
"$avatar" demo --preview -q -o demo.mp4
"$avatar" speak "Hello there, this is a recorded voice." -q -o take.wav
"$avatar" say --audio take.wav --motion audio --size 128 -q -o take.mp4   # the lips network (onnxruntime)
set +x
# the core install pulls no torch (it is in the [train] and [gpu] extras only)
"$work/venv/bin/python" -c "import importlib.util as u, sys; sys.exit('torch is installed' if u.find_spec('torch') else 0)"
test -s take.mp4
test -s demo.mp4 && test -s demo.srt && test -s demo.vtt
"$work/venv/bin/python" - <<'PY'
import avatar
from avatar.video import probe
info = probe("demo.mp4")
assert info["duration"] > 20 and info["frames"] > 100, info
print(f"wheel check: avatar {avatar.__version__} from {avatar.__file__}: demo {info['duration']:.1f} s, "
      f"{info['width']}x{info['height']}, {info['frames']} frames")
PY
