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
from robomem_sim.report import Box, category_table, draw_map, summary_table, write_report

TARGETS = {"success_full": 0.9, "success_full_over_off": 2.5, "explore_full_over_off": 0.2,
           "nav_full_over_oracle": 1.5}


def _ros_available() -> bool:
    try:
        import rclpy  # noqa: F401

        from robomem import srv  # noqa: F401
    except ImportError:
        return False
    return True


def run(args: argparse.Namespace) -> int:
    import os

    from robomem_sim.house_tasks import named_jobs
    from robomem_sim.parallel import run_jobs
    from robomem_sim.runner import DEFAULT_BUDGET, aggregate

    out = Path(args.out or "robomem-demo").resolve()
    out.mkdir(parents=True, exist_ok=True)
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    transport = args.transport if args.transport != "auto" else ("ros" if _ros_available() else "inprocess")
    budget = Budget(max_skill_calls=args.max_skill_calls or DEFAULT_BUDGET.max_skill_calls,
                    max_nav_m=args.max_nav_m or DEFAULT_BUDGET.max_nav_m)
    suite = getattr(args, "suite", "demo") or "demo"
    jobs = named_jobs(suite, args.seed)
    workers = getattr(args, "workers", 0) or min(len(jobs), (os.cpu_count() or 1) + 1)
    started = time.perf_counter()
    print("robomem demo: household tasks in simulated homes (real AI2-THOR rooms rebuilt in PyBullet, DIRECT)")
    print(f"  memory modes: {', '.join(modes)}; full memory via: "
          f"{'ROS 2 memory + planner nodes (own processes, DDS)' if transport == 'ros' else 'the in-process core'}; "
          f"planner: offline; budget per task: {budget.max_skill_calls} skill calls, {budget.max_nav_m:g} m")
    print(f"  suite {suite!r}: {len(jobs)} houses/histories, {workers if not args.tasks else 1} worker process(es); "
          "building tasks and morning walks (cached when unchanged) ...", flush=True)
    if transport == "ros":
        from robomem_sim.ros_backend import isolate_ros

        isolate_ros()  # one domain for every worker's nodes, off other ROS systems
    bar = tqdm(total=sum(j.per_house for j in jobs) * len(modes), desc="task runs", unit="run", dynamic_ncols=True)
    counted = {"jobs": 0, "tasks": 0}

    def on_tasks(n: int) -> None:
        counted["jobs"] += 1
        counted["tasks"] += n
        left = sum(j.per_house for j in jobs[counted["jobs"]:]) if not args.tasks else 0
        bar.total = (counted["tasks"] + left) * len(modes)
        bar.refresh()

    def on_run(run: dict[str, Any]) -> None:
        bar.update(1)
        bar.set_postfix_str(f"{run['task']} [{run['mode']}] {'ok' if run['success'] else 'failed'}")

    try:
        results = run_jobs(jobs, modes, budget, transport, out, workers, on_tasks, on_run, out / "map.png",
                           use_cache=not getattr(args, "no_cache", False), limit=args.tasks or None,
                           record_dir=out / "bags" if getattr(args, "record", False) else None)
    finally:
        bar.close()
    runs = [r for res in results for r in res["runs"]]
    result: dict[str, Any] = {
        "runs": runs, "summary": aggregate(runs, modes), "tasks": sum(len(res["tasks"]) for res in results),
        "suite": suite, "workers": workers, "houses": {res["house"]["key"]: res["house"] for res in results},
        "budget": {"max_skill_calls": budget.max_skill_calls, "max_nav_m": budget.max_nav_m,
                   "max_time_s": budget.max_time_s},
    }
    splits = sorted({r.get("split", "") for r in runs})
    if len(splits) > 1:
        result["summary_by_split"] = {s: aggregate([r for r in runs if r.get("split") == s], modes) for s in splits}
    result["transport"] = transport
    if transport == "ros":
        result["memory_node_startup_s"] = [round(s, 2) for res in results for s in res["startup_s"]]
    result["targets"] = _targets(result["summary"])
    result["wall_s"] = round(time.perf_counter() - started, 1)
    report = write_report(result, out / "report.json")
    picture = next((res["picture"] for res in results if res.get("picture")), None)
    print()
    for name, summary in ([("", result["summary"])] if len(splits) <= 1 else
                          [(f"{s} houses", result["summary_by_split"][s]) for s in splits]):
        if name:
            print(f"{name}:")
        print(summary_table(summary, modes))
        print()
        print(category_table(summary, modes))
        print()
    for line in _target_lines(result["targets"]):
        print(line)
    print(f"\nreport: {report}\nmap:    {picture}\ntotal:  {time.perf_counter() - started:.0f} s")
    return 0


def _targets(summary: dict[str, Any]) -> dict[str, Any]:
    off, full = summary.get("off"), summary.get("full")
    if not off or not full:
        return {}
    success = full["success_rate"] / off["success_rate"] if off["success_rate"] else float("inf")
    explore = full["mean_explore_steps"] / off["mean_explore_steps"] if off["mean_explore_steps"] else 0.0
    nav = summary.get("ratios", {}).get("full/oracle nav_m")
    return {
        "success_full": round(full["success_rate"], 3), "success_full_target": TARGETS["success_full"],
        "success_full_met": full["success_rate"] >= TARGETS["success_full"],
        "nav_full_over_oracle": None if nav is None else round(nav, 2), "nav_target": TARGETS["nav_full_over_oracle"],
        "nav_met": nav is not None and nav <= TARGETS["nav_full_over_oracle"],
        "success_full_over_off": round(success, 2), "success_target": TARGETS["success_full_over_off"],
        "success_met": success >= TARGETS["success_full_over_off"],
        "explore_full_over_off": round(explore, 3), "explore_target": TARGETS["explore_full_over_off"],
        "explore_met": explore <= TARGETS["explore_full_over_off"],
    }


def _target_lines(targets: dict[str, Any]) -> list[str]:
    if not targets:
        return []
    mark = {True: "met", False: "NOT met"}
    nav = targets["nav_full_over_oracle"]
    return [
        f"success with full memory: {targets['success_full']:.0%} (target >= {targets['success_full_target']:.0%}: "
        f"{mark[targets['success_full_met']]})",
        f"driving with full memory / the oracle's (tasks both finish): {'-' if nav is None else f'{nav:.2f}x'} "
        f"(target <= {targets['nav_target']}x: {mark[targets['nav_met']]})",
        f"success, full memory / memory off: {targets['success_full_over_off']:.2f}x "
        f"(target >= {targets['success_target']}x: {mark[targets['success_met']]})",
        f"exploration steps, full / off: {targets['explore_full_over_off']:.3f} "
        f"(target <= {targets['explore_target']}: {mark[targets['explore_met']]})",
    ]


def draw_house_map(house: Any, setup: Any, history: Any, path: Path) -> Path:
    """A house after its morning walk: true boxes, memory's objects and scene graph, rooms, the walk."""
    from robomem.core import Memory, MemoryConfig

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
