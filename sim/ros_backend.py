"""Full-memory runs through robomem's ROS 2 nodes, over real DDS.

For each run a memory node starts (own process) on a copy of the house's morning memory (SQLite) and a
planner node (own process, offline backend) that knows it by name. This process owns the simulator:
its robot node (:class:`robomem_sim.robot_node.SimRobotNode`) serves the robot's skills and publishes
what the robot's camera perceives to the memory node's ``observations``. The run is one action goal
(robomem/action/ExecuteInstruction) sent to the planner node, which asks memory only through its
services and drives the robot only through the robot node. Both nodes are stopped (SIGINT, clean
shutdown) after the run. Without the planner (``planner=False``) the planner runs in this process and
asks the memory node through :class:`robomem.ros.memory_client.RosTools`.
"""

from __future__ import annotations

import os
import random
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from robomem.planner.agent import Outcome
from robomem.ros.bringup import stop_processes

NODE_NAME = "demo_memory"
PLANNER_NAME = "demo_planner"
ROBOT_NODE = "demo_robot"


def isolate_ros(prefix: str = "robomem-demo-") -> dict[str, str]:
    """Keep this program's DDS traffic on this machine and off other ROS systems: a random domain unless
    ROS_DOMAIN_ID is set, discovery limited to localhost, logs in a temp folder. Call before rclpy.init."""
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(120, 220)))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix=prefix))
    return {k: os.environ[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOG_DIR")}


@dataclass
class RosSession:
    """One full-memory run over ROS: the robot's eyes publish through ``feed``; ``tools`` ask the memory
    node; ``run(executor, instruction, budget, reference_time)`` (with the planner node) has the planner
    node carry out the instruction on ``executor`` (served by the in-process robot node)."""

    feed: Any
    tools: Any
    run: Callable[..., tuple[Outcome, dict[str, int]]] | None = None


class RosMemoryBackend:
    """Full memory through ROS 2 nodes, connected from ``node`` (this process's rclpy node). Each run gets
    a memory node (own process) on a copy of the morning memory; with ``planner`` (default) also a planner
    node (own process, offline backend), which drives this process's simulated robot through its robot
    node (:class:`robomem_sim.robot_node.SimRobotNode`, spun in a background thread)."""

    def __init__(self, node: Any, workdir: Path | None = None, planner: bool = True,
                 planner_params: dict[str, Any] | None = None, record_dir: Path | None = None,
                 name_suffix: str = "") -> None:
        """``name_suffix``: appended to every node name (several backends on one ROS graph, e.g. one per
        worker process of the demo)."""
        self.node = node
        self.suffix = name_suffix
        self.robot_name = f"{ROBOT_NODE}{name_suffix}"
        self.record_dir = record_dir  # each run's topics to a bag here (robomem.record.recorder), or None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="robomem-demo-nodes-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.runs = 0
        self.startup_s: list[float] = []
        self.planner = planner
        self.planner_params = dict(planner_params or {})
        self.robot_node: Any = None
        self._stack = ExitStack()
        if planner:
            from robomem_sim.robot_node import SimRobotNode, spinning

            self.robot_node = SimRobotNode(self.robot_name, context=node.context)
            self._stack.enter_context(spinning(self.robot_node))

    def close(self) -> None:
        self._stack.close()
        if self.robot_node is not None:
            self.robot_node.destroy_node()
            self.robot_node = None

    def _bag_name(self) -> str:
        """run-NN for the first (or only) backend's runs, run_jK-NN for another worker's job K."""
        prefix = "run" if self.suffix in ("", "_j0") else f"run{self.suffix}"
        return f"{prefix}-{self.runs:02d}"

    def _start(self, module: str, name: str, params: dict[str, Any]) -> subprocess.Popen:
        from robomem.ros.bringup import ros_command

        with open(self.workdir / f"{name}.log", "w") as log:  # the child keeps its own handle
            return subprocess.Popen(ros_command(module, name, params), stdout=log, stderr=subprocess.STDOUT)

    @contextmanager
    def session(self, db_copy: Path, rooms_config: list[dict[str, Any]]) -> Iterator[RosSession]:
        """A memory node on ``db_copy`` (and a planner node); yields the run's :class:`RosSession`."""
        from robomem.ros.memory_client import MemoryClient, RosTools

        self.runs += 1
        config = self.workdir / f"memory-{self.runs}.yaml"
        config.write_text(yaml.safe_dump({"memory": {"rooms": rooms_config}}))
        memory_name = f"{NODE_NAME}{self.suffix}_{self.runs}"
        planner_name = f"{PLANNER_NAME}{self.suffix}_{self.runs}"
        # This process's clients exist before the nodes start: a server answers a client it has discovered,
        # and a node discovers at start-up the endpoints that already exist (a client newer than its server
        # can lose its first answers: Fast DDS "failed to send response").
        started = time.perf_counter()
        client = MemoryClient(self.node, memory_node=memory_name, timeout_s=20.0)
        run = _PlannerLink(self.node, planner_name, self.robot_node) if self.planner else None
        processes = []
        if self.record_dir is not None:  # the recorder first: the memory node finds its readers as it starts
            from robomem.record.recorder import wait_until_recording

            recorder = f"demo_recorder{self.suffix}_{self.runs}"
            processes.append(self._start("robomem.record.recorder", recorder,
                                         {"bag_path": str(self.record_dir / self._bag_name())}))
            try:
                wait_until_recording(self.node, recorder)
            except Exception:
                stop_processes(processes)
                raise
        processes.append(self._start("robomem.ros.memory_node", memory_name,
                                     {"db_path": str(db_copy), "config_file": str(config)}))
        if self.planner:
            params = {"memory_node": memory_name, "robot_node": self.robot_name, **self.planner_params}
            processes.append(self._start("robomem.ros.planner_node", planner_name, params))
        try:
            client.wait_until_ready(timeout_s=60.0)
            if run is not None:
                run.wait_until_ready(60.0)
                self.robot_node.wait_for_memory(memory_name, 60.0)
                feed: Any = self.robot_node.observations
                published_before = feed.published
            else:
                feed = client
            self.startup_s.append(time.perf_counter() - started)
            yield RosSession(feed, RosTools(client), run)
            if self.robot_node is not None and self.robot_node.observations.published > published_before:
                client.expect(self.robot_node.robot_id, self.robot_node.observations.published)
            client.sync()
            lost = client.stats().get("batches_lost", 0)
            if lost:
                raise RuntimeError(f"{lost} observation batches were lost on the way to the memory node")
        finally:
            client.close()
            if run is not None:
                run.close()
            stop_processes(processes, timeout=20.0)


class _PlannerLink:
    """The demo's action client of one planner node; ``__call__`` runs one instruction on an executor."""

    def __init__(self, node: Any, planner_name: str, robot_node: Any) -> None:
        from robomem.ros.instruct import planner_client

        self.node = node
        self.robot_node = robot_node
        self.client = planner_client(node, planner_name)

    def wait_until_ready(self, timeout_s: float) -> None:
        if not self.client.wait_for_server(timeout_sec=timeout_s):
            raise RuntimeError("the planner node's action server did not appear")

    def close(self) -> None:
        self.client.destroy()

    def __call__(self, executor: Any, instruction: str, budget: Any, reference_time: float
                 ) -> tuple[Outcome, dict[str, int]]:
        return run_instruction(self.node, self.client, self.robot_node, executor, instruction, budget, reference_time)


def run_instruction(node: Any, planner: Any, robot_node: Any, executor: Any, instruction: str, budget: Any,
                    reference_time: float, timeout_s: float = 600.0) -> tuple[Outcome, dict[str, int]]:
    """Serve ``executor`` on ``robot_node``, send ``instruction`` to the planner (node name or action
    client), wait for the result; the planner's outcome and its memory queries by tool."""
    from robomem.action import ExecuteInstruction
    from robomem.ros import convert
    from robomem.ros.instruct import send_goal

    robot_node.attach(executor)
    try:
        goal = ExecuteInstruction.Goal(instruction=instruction, max_skill_calls=int(budget.max_skill_calls),
                                       max_nav_m=float(budget.max_nav_m), use_reference_time=True,
                                       reference_time=convert.time_to_msg(reference_time))
        _, response = send_goal(node, planner, goal, timeout_s=timeout_s)
        if response is None:
            raise RuntimeError(f"the planner did not accept {instruction!r}")
        result = response.result
    finally:
        robot_node.attach(None)
    outcome = Outcome(bool(result.success), result.reason, explore_steps=int(result.explore_steps),
                      replans=int(result.replans), invalid_plans=int(result.invalid_plans), plans=list(result.plans),
                      executed=list(result.executed), planner_calls=int(result.planner_calls),
                      llm_turns=int(result.llm_turns), prompt_tokens=int(result.prompt_tokens),
                      completion_tokens=int(result.completion_tokens))
    return outcome, {c.name: int(c.value) for c in result.memory_queries_by_tool}
