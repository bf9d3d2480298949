"""``robomem demo``: household task runs in simulated multi-room homes, memory off / short-term only /
full memory side by side, with a progress bar, a summary table, a JSON report and a top-down map.

Embedded defaults: SQLite memory, PyBullet DIRECT, the offline planner. With ``--transport ros`` (the
default when ROS 2 is installed) full-memory runs use robomem's memory node in its own process over
real DDS: the robot's perception publishes observation batches to it, and the planner asks it only
through its services. Its options are parsed by ``robomem.cli`` (which imports this module only to run).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from robomem.planner import Budget
from robomem_sim.report import Box, draw_map, summary_table, write_report

TARGETS = {"success_full_over_off": 2.5, "explore_full_over_off": 0.2}


def _ros_available() -> bool:
    try:
        import rclpy  # noqa: F401

        from robomem import srv  # noqa: F401
    except ImportError:
        return False
    return True


def run(args: argparse.Namespace) -> int:
    from robomem_sim.house_tasks import build_house_suite
    from robomem_sim.runner import DEFAULT_BUDGET, run_suite

    out = Path(args.out or "robomem-demo").resolve()
    out.mkdir(parents=True, exist_ok=True)
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    transport = args.transport if args.transport != "auto" else ("ros" if _ros_available() else "inprocess")
    budget = Budget(max_skill_calls=args.max_skill_calls or DEFAULT_BUDGET.max_skill_calls,
                    max_nav_m=args.max_nav_m or DEFAULT_BUDGET.max_nav_m)
    started = time.perf_counter()
    print("robomem demo: household tasks in simulated homes (real AI2-THOR rooms rebuilt in PyBullet, DIRECT)")
    print(f"  memory modes: {', '.join(modes)}; full memory via: "
          f"{'ROS 2 memory + planner nodes (own processes, DDS)' if transport == 'ros' else 'the in-process core'}; "
          f"planner: offline; budget per task: {budget.max_skill_calls} skill calls, {budget.max_nav_m:g} m")
    print("  building the task suite from RoomR episodes ...", flush=True)
    tasks = build_house_suite(args.seed)
    if args.tasks:
        tasks = tasks[: args.tasks]
    backend, ros_node = None, None
    if transport == "ros":
        backend, ros_node = _start_ros(out, out / "bags" if getattr(args, "record", False) else None)
    bar = tqdm(total=len(tasks) * len(modes), desc="task runs", unit="run", dynamic_ncols=True)

    def progress(done: int, total: int, run: dict[str, Any]) -> None:
        bar.update(1)
        bar.set_postfix_str(f"{run['task']} [{run['mode']}] {'ok' if run['success'] else 'failed'}")

    try:
        result = run_suite(modes, tasks, progress=progress, budget=budget, seed=args.seed, memory_backend=backend)
    finally:
        bar.close()
        if ros_node is not None:
            _stop_ros(backend, ros_node)
    result["transport"] = transport
    if backend is not None:
        result["memory_node_startup_s"] = [round(s, 2) for s in backend.startup_s]
    result["targets"] = _targets(result["summary"])
    report = write_report(result, out / "report.json")
    picture = _picture(tasks, out / "map.png")
    print()
    print(summary_table(result["summary"], modes))
    print()
    for line in _target_lines(result["targets"]):
        print(line)
    print(f"\nreport: {report}\nmap:    {picture}\ntotal:  {time.perf_counter() - started:.0f} s")
    return 0


def _start_ros(out: Path, record_dir: Path | None = None) -> tuple[Any, Any]:
    import rclpy

    from robomem_sim.ros_backend import RosMemoryBackend, isolate_ros

    isolate_ros()
    rclpy.init()
    node = rclpy.create_node("robomem_demo")
    return RosMemoryBackend(node, out / "nodes", record_dir=record_dir), node


def _stop_ros(backend: Any, node: Any) -> None:
    import rclpy

    backend.close()
    node.destroy_node()
    rclpy.try_shutdown()


def _targets(summary: dict[str, Any]) -> dict[str, Any]:
    off, full = summary.get("off"), summary.get("full")
    if not off or not full:
        return {}
    success = full["success_rate"] / off["success_rate"] if off["success_rate"] else float("inf")
    explore = full["mean_explore_steps"] / off["mean_explore_steps"] if off["mean_explore_steps"] else 0.0
    return {
        "success_full_over_off": round(success, 2), "success_target": TARGETS["success_full_over_off"],
        "success_met": success >= TARGETS["success_full_over_off"],
        "explore_full_over_off": round(explore, 3), "explore_target": TARGETS["explore_full_over_off"],
        "explore_met": explore <= TARGETS["explore_full_over_off"],
    }


def _target_lines(targets: dict[str, Any]) -> list[str]:
    if not targets:
        return []
    mark = {True: "met", False: "NOT met"}
    return [
        f"success, full memory / memory off: {targets['success_full_over_off']:.2f}x "
        f"(target >= {targets['success_target']}x: {mark[targets['success_met']]})",
        f"exploration steps, full / off: {targets['explore_full_over_off']:.3f} "
        f"(target <= {targets['explore_target']}: {mark[targets['explore_met']]})",
    ]


def _picture(tasks: list[Any], path: Path) -> Path:
    """The first house after its morning walk: true boxes, memory's objects and scene graph, rooms."""
    from robomem.core import Memory, MemoryConfig
    from robomem_sim.house_runner import house_history

    setup = tasks[0].setup
    with setup.build() as house:
        history = house_history(house, setup)
        setup.morning(house)
        truth = [Box(o.object_type, house.center(o.object_id), o.size) for o in house.objects.values() if o.present]
        rooms = [(r["name"], r["min"], r["max"]) for r in history.rooms_config]
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "memory.sqlite"
            shutil.copyfile(history.db_path, copy)
            memory = Memory(MemoryConfig(db_path=str(copy), rooms=history.rooms_config))
            try:
                nodes, edges = memory.scene_graph()
            finally:
                memory.close()
        walk = [p for points in history.rooms.values() for p in points]
    title = f"{setup.name}: what memory believes after the morning walk ({len(nodes)} nodes, {len(edges)} edges)"
    return draw_map(path, truth, nodes, edges, rooms, walk, title)
