"""Where the memory node keeps its database: the state directory, never the install tree; URLs and
:memory: pass through untouched (pure Python, no ROS needed)."""

from __future__ import annotations

from pathlib import Path

from robomem.ros.state_dir import resolve_db_path


def test_db_paths_resolve_into_the_state_directory_and_urls_pass_through(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ROS_HOME", str(tmp_path / "ros_home"))
    default = Path(resolve_db_path(""))
    assert default.is_relative_to(tmp_path / "ros_home") and default.parent.is_dir()
    relative = Path(resolve_db_path("house.sqlite", namespace="/r2"))
    assert relative.is_relative_to(tmp_path / "ros_home") and relative.name == "house.sqlite"
    assert relative != Path(resolve_db_path("house.sqlite", namespace="/r1"))  # robots keep their own files
    absolute = tmp_path / "elsewhere" / "m.sqlite"
    assert resolve_db_path(str(absolute)) == str(absolute) and absolute.parent.is_dir()
    url = "postgresql://robomem@127.0.0.1:5433/home?node=r1"
    assert resolve_db_path(url) == url  # a fleet database is no file path
    assert resolve_db_path(":memory:") == ":memory:"
