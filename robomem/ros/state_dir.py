"""Where the memory node keeps its database: the robot's state directory, never the install tree.

``$ROS_HOME/robomem/`` (ROS_HOME defaults to ``~/.ros``, where ROS 2 keeps its logs), or
``$ROBOMEM_STATE_DIR`` when set. A node in a namespace gets a folder of its own
(``~/.ros/robomem/r2/memory.sqlite``), so two robots on one machine never share a file by accident.
"""

from __future__ import annotations

import os
from pathlib import Path

from robomem.core.storage import is_postgres_url

DEFAULT_DB_NAME = "memory.sqlite"
STATE_DIR_ENV = "ROBOMEM_STATE_DIR"


def state_dir(namespace: str = "") -> Path:
    """The folder robomem keeps its state in (not created here)."""
    if os.environ.get(STATE_DIR_ENV):
        base = Path(os.environ[STATE_DIR_ENV]).expanduser()
    else:
        ros_home = os.environ.get("ROS_HOME") or str(Path("~/.ros").expanduser())
        base = Path(ros_home).expanduser() / "robomem"
    parts = [p for p in namespace.split("/") if p]
    return base.joinpath(*parts) if parts else base


def resolve_db_path(db_path: str, namespace: str = "") -> str:
    """``""``: the default file in the state directory; a relative path: inside the state directory;
    an absolute path, ``:memory:`` or a ``postgresql://`` URL as given. The folder of a file path is created."""
    if db_path == ":memory:" or is_postgres_url(db_path):
        return db_path
    path = Path(db_path).expanduser() if db_path else Path(DEFAULT_DB_NAME)
    if not path.is_absolute():
        path = state_dir(namespace) / path
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path)
