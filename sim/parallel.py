"""The household suite house by house in worker processes, with a disk cache of what each house costs
to prepare.

A suite is a list of :class:`~robomem_sim.house_tasks.HouseJob` (a house and a history with the seeds
that draw them), so one job gives the same tasks alone as in the whole suite. Each job runs in a worker
process (``spawn``: PyBullet and rclpy are not fork-safe): it builds its house once, draws its tasks,
walks it in the morning and runs every task in every mode; with the ROS transport each job has its own
ROS domain (derived from the demo's), rclpy context and robot node, and each full-memory run its own
memory and planner nodes (names carry the job's suffix). Progress comes back over a queue.

The cache (``$ROBOMEM_CACHE_DIR``, default ``~/.cache/robomem/household``) keeps per job the drawn
tasks and the morning walk's memory file, keyed by the job, the budget and a digest of the sources they
depend on (:data:`DIGEST_PARTS`: a change there starts afresh); at most :data:`CACHE_ENTRIES` entries,
the least recently used go first.
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import multiprocessing
import os
import pickle
import queue as queue_module
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from multiprocessing.managers import SyncManager
from pathlib import Path
from typing import Any

CACHE_ENTRIES = 64
PARENT_POLL_S = 1.0  # how often a worker checks that the demo that spawned it still runs
DOMAIN_LO, DOMAIN_SPAN = 120, 100  # ROS domains the jobs of one demo take (from its own, ROS_DOMAIN_ID)
ROOT = Path(__file__).resolve().parent


def cache_dir() -> Path:
    return Path(os.environ.get("ROBOMEM_CACHE_DIR") or Path.home() / ".cache" / "robomem" / "household")


#: What a house's tasks and morning walk depend on: robomem's memory, perception and AI2-THOR data code, the
#: planner's skill vocabulary, and the simulator (not the planner's search, the reports or the ROS glue).
DIGEST_PARTS = ("core", "perception", "thor", "planner/plan.py", "planner/results.py", "planner/language.py")
NOT_DIGESTED = frozenset({"demo.py", "parallel.py", "report.py", "ros_backend.py", "robot_node.py",
                          "priors.py"})  # likely places are asked during tasks, never in building or walking


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """SHA-1 of the sources a cached house depends on (:data:`DIGEST_PARTS` and the simulator's)."""
    import robomem

    package = Path(robomem.__file__).resolve().parent
    paths = [p for part in DIGEST_PARTS for p in ([package / part] if part.endswith(".py")
                                                  else sorted((package / part).rglob("*.py")))
             if p.name not in NOT_DIGESTED]
    paths += [p for p in sorted(ROOT.glob("*.py")) if p.name not in NOT_DIGESTED]
    digest = hashlib.sha1()
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _key(job: Any, budget: Any) -> str:
    return hashlib.sha1(f"{job!r}|{budget!r}|{code_digest()}".encode()).hexdigest()[:20]


def _prune(folder: Path, keep: int = CACHE_ENTRIES) -> None:
    entries = sorted((p for p in folder.iterdir() if (p / "done").exists()), key=lambda p: p.stat().st_mtime)
    for old in entries[: max(0, len(entries) - keep)]:
        shutil.rmtree(old, ignore_errors=True)


def prepared_house(job: Any, budget: Any, use_cache: bool = True) -> tuple[Any, list[Any], Any]:
    """(setup, tasks, morning walk) of a job, from the cache or computed (and cached)."""
    from robomem_sim.house_runner import walk_house

    folder = cache_dir()
    entry = folder / _key(job, budget)
    if use_cache and (entry / "done").exists():
        setup, tasks, history = pickle.loads((entry / "house.pkl").read_bytes())
        (entry / "done").touch()
        return setup, tasks, replace(history, db_path=str(entry / Path(history.db_path).name))
    setup = job.setup()
    with setup.build() as house:
        tasks = job.tasks(house, setup, budget)
        work = entry.with_name(entry.name + f".tmp{os.getpid()}")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        history = walk_house(house, setup, work)
    if not use_cache:
        return setup, tasks, history
    (work / "house.pkl").write_bytes(pickle.dumps((setup, tasks, history)))
    (work / "done").touch()
    shutil.rmtree(entry, ignore_errors=True)
    work.rename(entry)
    _prune(folder)
    return setup, tasks, replace(history, db_path=str(entry / Path(history.db_path).name))


def run_job(job: Any, modes: Sequence[str], budget: Any, transport: str, workdir: str, suffix: str,
            progress: Any = None, picture: str | None = None, use_cache: bool = True,
            limit: int | None = None, record_dir: str | None = None) -> dict[str, Any]:
    """One job in this process: its tasks (the first ``limit``) in every mode (see the module doc);
    ``progress``: a queue that gets ("tasks", n) once and ("run", run) after each run; ``picture``: draw
    the house's map there."""
    from robomem_sim.house_runner import run_house_task

    started = time.perf_counter()
    setup, tasks, history = prepared_house(job, budget, use_cache)
    prepared_s = time.perf_counter() - started
    if progress is not None:
        progress.put(("tasks", len(tasks[:limit])))
    backend = node = None
    if transport == "ros" and "full" in modes:
        import rclpy

        _own_domain(suffix)

        from robomem_sim.ros_backend import RosMemoryBackend

        rclpy.init()
        node = rclpy.create_node(f"robomem_demo{suffix}")
        backend = RosMemoryBackend(node, Path(workdir) / "nodes", name_suffix=suffix,
                                   record_dir=Path(record_dir) if record_dir else None)
    runs = []
    try:
        with setup.build() as house:
            for task in tasks[:limit]:
                for mode in modes:
                    run = run_house_task(task, mode, house, history, budget, backend)
                    run["split"] = setup.split
                    runs.append(run)
                    if progress is not None:
                        progress.put(("run", run))
            picture_path = None
            if picture is not None:
                from robomem_sim.demo import draw_house_map

                picture_path = str(draw_house_map(house, setup, history, Path(picture)))
    finally:
        startup = list(backend.startup_s) if backend is not None else []
        if backend is not None:
            import rclpy

            backend.close()
            node.destroy_node()
            rclpy.try_shutdown()
    return {"runs": runs, "tasks": [t.task_id for t in tasks[:limit]], "startup_s": startup, "picture": picture_path,
            "house": {"key": setup.key, "split": setup.split, "walk_frames": history.frames, "tasks": len(tasks),
                      "prepare_s": round(prepared_s, 1), "wall_s": round(time.perf_counter() - started, 1)}}


def _own_domain(suffix: str) -> None:
    """A ROS domain of this job's own (its nodes inherit it): jobs running at once in other workers have
    robot and memory nodes on the same topic names (``observations``), which must not meet."""
    digits = "".join(c for c in suffix if c.isdigit())
    if not digits:
        return
    base = int(os.environ.get("ROS_DOMAIN_ID", "120"))
    os.environ["ROS_DOMAIN_ID"] = str(DOMAIN_LO + (base - DOMAIN_LO + 1 + int(digits)) % DOMAIN_SPAN)


def exit_with_parent(parent: int, poll_s: float = PARENT_POLL_S) -> None:
    """In a worker process: exit as soon as ``parent`` is no longer its parent (the demo was stopped by
    a signal that did not reach its workers, e.g. a SIGTERM to it alone), instead of living on idle."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def run_jobs(jobs: Sequence[Any], modes: Sequence[str], budget: Any, transport: str, workdir: Path,
             workers: int, on_tasks: Callable[[int], None] | None = None,
             on_run: Callable[[dict[str, Any]], None] | None = None, picture: Path | None = None,
             use_cache: bool = True, limit: int | None = None, record_dir: Path | None = None
             ) -> list[dict[str, Any]]:
    """Every job in ``workers`` spawned processes (in this process, one after the other, when ``workers``
    <= 1 or with ``limit``: the suite's first ``limit`` tasks); the results in job order. ``on_tasks(n)``
    when a job knows its task count, ``on_run(run)`` after each run."""
    if workers <= 1 or limit is not None:
        out = []
        left = limit
        for k, job in enumerate(jobs):
            if left is not None and left <= 0:
                break
            inbox = _Relay(on_tasks, on_run)
            result = run_job(job, modes, budget, transport, str(workdir), f"_j{k}", inbox,
                             str(picture) if picture is not None and k == 0 else None, use_cache, left,
                             str(record_dir) if record_dir else None)
            out.append(result)
            if left is not None:
                left -= len(result["tasks"])
        return out
    context = multiprocessing.get_context("spawn")
    manager = SyncManager(ctx=context)
    manager.start(exit_with_parent, (os.getpid(),))  # its server process, too, goes when the demo does
    with manager:
        inbox = manager.Queue()
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=exit_with_parent,
                                                    initargs=(os.getpid(),)) as pool:
            futures = [pool.submit(run_job, job, tuple(modes), budget, transport, str(workdir), f"_j{k}", inbox,
                                   str(picture) if picture is not None and k == 0 else None, use_cache, None,
                                   str(record_dir) if record_dir else None)
                       for k, job in enumerate(jobs)]
            pending = set(futures)
            while pending:
                _drain(inbox, on_tasks, on_run, block=True)
                pending = {f for f in pending if not f.done()}
            _drain(inbox, on_tasks, on_run, block=False)
            return [f.result() for f in futures]


class _Relay:
    """A progress queue for a job run in this process: passes each message on at once."""

    def __init__(self, on_tasks: Callable[[int], None] | None, on_run: Callable[[dict[str, Any]], None] | None):
        self.on_tasks, self.on_run = on_tasks, on_run

    def put(self, message: tuple[str, Any]) -> None:
        kind, value = message
        if kind == "tasks" and self.on_tasks is not None:
            self.on_tasks(value)
        elif kind == "run" and self.on_run is not None:
            self.on_run(value)


def _drain(inbox: Any, on_tasks: Callable[[int], None] | None, on_run: Callable[[dict[str, Any]], None] | None,
           block: bool) -> None:
    while True:
        try:
            kind, value = inbox.get(timeout=0.2) if block else inbox.get_nowait()
        except (queue_module.Empty, EOFError, OSError):
            return
        block = False
        if kind == "tasks" and on_tasks is not None:
            on_tasks(value)
        elif kind == "run" and on_run is not None:
            on_run(value)
