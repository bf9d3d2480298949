"""A real PostgreSQL server for a test file: started on 127.0.0.1 in a temporary directory, stopped at
the file's end (skips with the reason when the server binaries are missing). ``fresh_db`` gives each
test a database of its own; ``backend_url`` parametrises persistence tests over SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from robomem.core.pg_server import LocalPostgres, missing_reason

_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def postgres_server():
    """One server per test file (fsync off: tests need no power-loss safety)."""
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    pytest.importorskip("psycopg", reason="psycopg not installed (pip install -r requirements.txt)")
    server = LocalPostgres(fsync=False).start()
    yield server
    server.destroy()


@pytest.fixture
def fresh_db(postgres_server: LocalPostgres, tmp_path: Path):
    """A function that makes a new database and returns its URL for a node (spool under tmp_path)."""
    database = postgres_server.create_database(f"t{next(_numbers)}")

    def url(node: str = "default") -> str:
        return f"{database}?node={node}&spool={tmp_path / f'spool-{node}.sqlite'}"

    return url


@pytest.fixture(params=["sqlite", "postgres"])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A db_path for a new memory on each backend: an SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "memory.sqlite")
    return request.getfixturevalue("fresh_db")()
