"""Memory calibrates itself to the detector it is fed: detection rate and position noise."""

import numpy as np
import pytest
from frames import frame, looking

from robomem.core import Memory, MemoryConfig
from robomem.core.types import make_detection


def _run(memory: Memory, p_detect: float, sigma: float, frames: int = 400, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    places = [(2.0 + 0.6 * (i % 4), -1.2 + 0.8 * (i // 4), 1.0) for i in range(12)]
    view = looking(0, 0, fov=120, rng=6.0)
    for t in range(frames):
        dets = [
            make_detection("Book", np.add(p, rng.normal(0, sigma, 3)), (0.2, 0.15, 0.05), 0.9)
            for p in places if rng.random() < p_detect or t < 2
        ]
        memory.ingest(frame(float(t), view, *dets))


@pytest.mark.parametrize(("p_detect", "sigma"), [(0.5, 0.02), (0.75, 0.06)])
def test_detector_rate_and_noise_are_learned(tmp_path, p_detect, sigma):
    memory = Memory(MemoryConfig(db_path=str(tmp_path / "m.sqlite")))
    _run(memory, p_detect, sigma)
    # the books stand 2-4 m away: the model's range falloff explains part of the misses
    ranges = [np.linalg.norm([2.0 + 0.6 * (i % 4), -1.2 + 0.8 * (i // 4), -0.5]) / 6.0 for i in range(12)]
    mean_shape = np.mean([memory.detector.shape(r, np.array([0.2, 0.15, 0.05])) for r in ranges])
    assert memory.detector.p_max * mean_shape == pytest.approx(p_detect, abs=0.06)
    assert np.sqrt(memory.noise.variance) == pytest.approx([sigma] * 3, rel=0.35)
    assert memory.count("Book") == 12, "a weak or noisy detector makes neither ghosts nor duplicates"
    memory.close()
    reopened = Memory(MemoryConfig(db_path=str(tmp_path / "m.sqlite")))
    assert reopened.detector.p_max == pytest.approx(memory.detector.p_max)
    assert np.allclose(reopened.noise_margin(), memory.noise_margin())
    reopened.close()


def test_calibration_can_be_switched_off():
    memory = Memory(MemoryConfig(calibrate_detector=False))
    _run(memory, 0.5, 0.02, frames=100)
    assert memory.detector.p_max == MemoryConfig().detector_p_max
