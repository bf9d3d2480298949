"""The README's core example runs as printed and its comments tell the truth."""

import re
from pathlib import Path

import numpy as np
import pytest

from robomem.core import Memory, MemoryConfig

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.data("text_model")  # memory.search("cup") loads the offline text model
def test_readme_example(tmp_path):
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    db = tmp_path / "home.sqlite"
    assert 'db_path="home.sqlite"' in code
    exec(compile(code.replace('db_path="home.sqlite"', f'db_path="{db}"'), "README.md", "exec"), {})
    memory = Memory(MemoryConfig(db_path=str(db)))  # "reopening home.sqlite gives identical answers"
    assert np.allclose(memory.where_is("Mug").center, [-2.0, 0.3, 0.78], atol=0.01)
    was = memory.where_was("Mug", at=15.0)
    assert was.receptacle == "CounterTop" and was.last_seen == 11.0
    assert [(c.label, c.change) for c in memory.what_changed(since=15.0)] == [("Mug", "moved")]
    assert memory.count("Mug") == 1 and memory.last_seen("Mug") == 21.0
    memory.close()
