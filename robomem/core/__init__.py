"""robomem core: the memory itself, free of ROS (pure Python + numpy/scipy/networkx/sqlite)."""

from robomem.core.config import MemoryConfig
from robomem.core.memory import Memory
from robomem.core.types import Detection, ObservationBatch, RejectedInput, ViewCone

__all__ = ["Detection", "Memory", "MemoryConfig", "ObservationBatch", "RejectedInput", "ViewCone"]
