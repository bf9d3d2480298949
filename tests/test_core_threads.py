"""Memory shared between an ingesting thread and querying threads (as under a ROS executor)."""

import threading

from frames import det, frame, looking

from robomem.core import Memory, MemoryConfig


def _frames():
    views = [looking(0, 0, yaw=0), looking(0, 0, yaw=180)]
    for t in range(300):
        view = views[t % 2]
        x = 2.0 if t % 2 == 0 else -2.0
        mug_place = 2.0 if t < 150 else -2.5  # the mug moves halfway through
        dets = [det("CounterTop", x, 0, 0.45)]
        if (mug_place > 0) == (x > 0):
            dets.append(det("Mug", mug_place, 0.1, 0.95))
        yield frame(float(t), view, *dets)


def test_concurrent_queries_see_consistent_memory(tmp_path):
    shared = Memory(MemoryConfig(db_path=str(tmp_path / "shared.sqlite")))
    errors: list[BaseException] = []
    done = threading.Event()

    def ingest() -> None:
        try:
            for batch in _frames():
                shared.ingest(batch)
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            done.set()

    def query() -> None:
        try:
            while not done.is_set():
                found = shared.where_is("Mug")
                assert found is None or abs(abs(found.center[0]) - 2.25) < 0.3
                assert shared.count("Mug") <= 1
                shared.what_changed(since=0.0)
                shared.contents("CounterTop")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=ingest)] + [threading.Thread(target=query) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    alone = Memory(MemoryConfig(db_path=str(tmp_path / "alone.sqlite")))
    for batch in _frames():
        alone.ingest(batch)
    assert shared.where_is("Mug").to_dict() == alone.where_is("Mug").to_dict()
    assert [(c.label, c.change) for c in shared.what_changed(since=100.0)] == [("Mug", "moved")]
    shared.close()
    alone.close()
