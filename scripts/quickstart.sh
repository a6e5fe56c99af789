#!/usr/bin/env bash
# Set up a venv (CPU torch from the pinned wheel first, so pip never pulls a CUDA build)
# and run the quickstart. GPU users: install your own torch first, then drop the pin.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d .venv ] || python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -c "import torch" 2>/dev/null || python -m pip install -q torch==2.13.0
python -m pip install -q -e ".[test]"
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
embexp-train "$@"
