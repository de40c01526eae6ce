#!/usr/bin/env bash
# Install into .venv (created if missing) with the test, GPU-path, training (torch) and cluster (Ray) extras,
# then run pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev,gpu,train,cluster]"
.venv/bin/python -m pytest -q "$@"
