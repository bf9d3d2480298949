"""Shared helpers: build frames in the core's z-up world frame."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from robomem.core import Memory, MemoryConfig  # noqa: E402


@pytest.fixture
def memory(tmp_path: Path) -> Memory:
    mem = Memory(MemoryConfig(db_path=str(tmp_path / "memory.sqlite")))
    yield mem
    mem.close()
