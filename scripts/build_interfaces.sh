#!/usr/bin/env bash
# Build robomem's ROS interfaces (msg/*.msg, msg/srv/*.srv, msg/action/*.action) and the local
# interface packages ROS's PyPI wheels lack (ros_deps/: tf2_msgs) into the venv, with CMake and the
# wheels' rosidl. Run after editing msg/ (incremental, a few seconds); scripts/setup.sh runs it too.
# Libraries go to .venv/lib (on the loader path of every venv Python), robomem's generated Python
# modules into the source tree (like build_ext --inplace).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export AMENT_PREFIX_PATH="$ROOT/.venv"
mkdir -p build
SITE=$("$ROOT/.venv/bin/python" -c 'import sys; print("lib/python%d.%d/site-packages" % sys.version_info[:2])')

build() {  # build <source dir> <build dir> <python install dir under .venv>
  cmake -S "$1" -B "$2" -Wno-dev -DBUILD_TESTING=OFF -DROBOMEM_INSTALL_PYTHON=OFF \
    -DCMAKE_INSTALL_PREFIX="$ROOT/.venv" -DPYTHON_INSTALL_DIR="$3" \
    -DPython3_EXECUTABLE="$ROOT/.venv/bin/python" >"$2-configure.log" 2>&1 \
    || { cat "$2-configure.log" >&2; exit 1; }
  cmake --build "$2" -j "$(nproc)" >"$2-build.log" 2>&1 || { tail -40 "$2-build.log" >&2; exit 1; }
  cmake --install "$2" >"$2-install.log" 2>&1 || { tail -20 "$2-install.log" >&2; exit 1; }
}

# tf2_msgs: a real ROS 2 install has it; the PyPI wheels do not (only for /tf and /tf_static)
for package in ros_deps/*/; do
  name=$(basename "$package")
  if ! "$ROOT/.venv/bin/python" -c "import $name.msg" 2>/dev/null || [ -n "${REBUILD_DEPS:-}" ]; then
    build "$package" "build/$name" "$SITE"
  fi
done

rm -rf .venv/lib/robomem_interfaces  # no generated module of a renamed or removed interface is left behind
build . build/ros lib/robomem_interfaces
rm -rf robomem/msg robomem/srv robomem/action robomem/robomem_s__*.so
cp -r .venv/lib/robomem_interfaces/robomem/{msg,srv,action} .venv/lib/robomem_interfaces/robomem/robomem_s__*.so robomem/
