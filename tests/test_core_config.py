"""config/memory.yaml documents the real defaults, and bad configuration is refused."""

from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from robomem.core import MemoryConfig
from robomem.core.config import label_to_text, normalize_label

YAML = Path(__file__).resolve().parents[1] / "config" / "memory.yaml"


def test_yaml_values_are_the_defaults_except_the_database_path():
    documented = yaml.safe_load(YAML.read_text())["memory"]
    defaults = MemoryConfig()
    known = {f.name for f in fields(MemoryConfig)}
    assert set(documented) <= known
    for key, value in documented.items():
        if key != "db_path":
            assert getattr(defaults, key) == value, key
    assert MemoryConfig.from_yaml(YAML).db_path == "robomem_memory.sqlite"


def test_unknown_keys_and_labels():
    with pytest.raises(ValueError, match="unknown memory config keys"):
        MemoryConfig.from_dict({"gate": 1.0})
    config = MemoryConfig.from_dict({"receptacles": ["Kitchen Island"], "class_gates": {"Chair": 0.3}})
    assert config.is_receptacle("kitchen_island") and not config.is_receptacle("CounterTop")
    assert config.class_gates == {"chair": 0.3}
    assert normalize_label("Butter Knife") == normalize_label("butter_knife") == normalize_label("ButterKnife")
    assert label_to_text("ButterKnife") == "butter knife"
