"""The planner node: household instructions in, plans of robot skills out, memory only through services.

Action ``~/execute_instruction`` (robomem/action/ExecuteInstruction): the node parses the instruction,
asks the memory node through its services as tool calls (where_is, contents, what_changed, last_seen,
semantic_search, planner_context), plans skills (navigate_to, open, close, pick, place, toggle_on/off),
validates the plan against memory (an invalid plan is never executed), has the robot node run it
step by step (``/<robot_node>/execute_skill``; feedback after every skill) and replans with fresh
memory when a step fails; when memory does not know, it explores room by room. One goal at a time
(a second is rejected while one runs); a cancel stops the run at the next skill.

Backends (parameter ``backend``): ``offline`` (default: deterministic, no network) or ``llm`` (an
OpenAI-compatible chat-completions server with tool calling: llama.cpp server, vLLM, Ollama; see
``llm_*`` parameters). Each run is kept in memory's experience (``record_experience``); the LLM backend
gets the most similar successful runs as few-shot examples.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from collections import Counter
from typing import Any

from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.node import Node

from robomem import msg as rmsg
from robomem import srv
from robomem.action import ExecuteInstruction
from robomem.planner import Agent, Budget, ChatClient, CountingTools, LLMError, LLMPlanner
from robomem.planner.agent import Failed, Outcome
from robomem.planner.experience import run_episode
from robomem.ros import convert
from robomem.ros.calls import ServiceError
from robomem.ros.memory_client import MemoryClient, RosExperience, RosTools
from robomem.ros.params import Parameters, Spec, not_empty
from robomem.ros.robot_client import TRANSPORTS, RobotClient, RosExecutor
from robomem.ros.runtime import run_node

MAX_INSTRUCTION_CHARS = 2000
BACKENDS = ("offline", "llm")
TIME_PHRASES = ("this morning", "today", "earlier")


class Cancelled(Failed):
    """The goal was cancelled; the run stops before the next skill."""


def instruction_error(text: str) -> str:
    """Why an instruction cannot be taken ('' if it can)."""
    if not text.strip():
        return "empty_instruction"
    if len(text) > MAX_INSTRUCTION_CHARS:
        return "instruction_too_long"
    return ""


def _backend(value: Any) -> str | None:
    return None if value in BACKENDS else f"must be one of {BACKENDS}"


def _tool_results(value: Any) -> str | None:
    return None if value in ("tool", "user") else "must be tool or user"


PLANNER_SPECS = (  # read per goal, so a change takes effect at the next instruction, except the read-only ones
    Spec("memory_node", "memory", "the memory node asked through its services (relative: in this namespace; "
         "/memory: one shared memory)", read_only=True, check=not_empty),
    Spec("robot_node", "robot", "the robot's skill server (<robot_node>/execute_skill, .../get_state)",
         read_only=True, check=not_empty),
    Spec("backend", "offline", "offline (deterministic, no network) | llm (OpenAI-compatible server)", check=_backend),
    Spec("llm_base_url", "http://127.0.0.1:8080/v1", "the LLM server (llama.cpp, vLLM, Ollama: .../v1)"),
    Spec("llm_model", "default", "model name sent to the LLM server"),
    Spec("llm_api_key_env", "", "name of the environment variable holding the API key ('' = none)"),
    Spec("llm_timeout_s", 120.0, "one LLM request's timeout (s)", 1.0, 3600.0),
    Spec("llm_memory_context", True, "memory's planner context (token-budgeted) in the prompt"),
    Spec("llm_context_tokens", 400, "token budget of that context", 1, 32000),
    Spec("llm_examples_k", 3, "few-shot examples of similar successful runs (experience memory; 0 = none)", 0, 50),
    Spec("llm_tool_choice", "auto", "auto | required | none | a tool name to force (submit_plan for llama.cpp)",
         check=not_empty),
    Spec("llm_tool_results", "tool", "tool | user (chat templates that drop tool messages)", check=_tool_results),
    Spec("llm_max_tokens", 512, "completion tokens per LLM turn", 1, 32768),
    Spec("llm_max_plan_attempts", 3, "invalid plans sent back to the model before giving up on a request", 1, 20),
    Spec("max_skill_calls", 40, "budget of one instruction (a goal may set its own)", 1, 10_000),
    Spec("max_nav_m", 40.0, "driving budget of one instruction (m)", 0.1, 100_000.0),
    Spec("max_replans", 6, "replans of one instruction at most", 0, 1000),
    Spec("earlier_s", 3600.0, "'this morning' / 'earlier': this long ago, unless the goal says when (s)", 0.0, 1e7),
    Spec("record_experience", True, "keep every run in memory's experience"),
    Spec("skill_transport", "action", "action: skills over the robot's run_skill action (a cancelled instruction "
         "cancels the running skill); service: over execute_skill", read_only=True,
         check=lambda v: None if v in TRANSPORTS else f"must be one of {TRANSPORTS}"),
    Spec("autostart", True, "go to active (configure + activate) at start; false: a lifecycle manager does",
         read_only=True),
    Spec("service_timeout_s", 20.0, "memory queries and robot state (s); a skill may take up to 120 s", 0.1, 3600.0,
         read_only=True),
)


class PlannerNode(LifecycleNode):
    """A managed node: instructions are accepted only while active (configure checks the parameters,
    activate opens for goals, deactivate refuses new ones: a running one finishes). Autostart by default."""

    def __init__(self, name: str = "planner", **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.active = False
        self.params = Parameters(self, PLANNER_SPECS)
        if self.params["backend"] not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {self.params['backend']!r}")
        self.counters: Counter[str] = Counter()
        self._busy = threading.Lock()
        # Memory and robot are called from inside the action's execute callback: through a client node
        # spun by its own executor, never by the executor that runs this node.
        self._client_node = Node(f"{self.get_name()}_clients", namespace=self.get_namespace(),
                                 context=self.context, use_global_arguments=False)  # not renamed by __node:=
        self._client_executor = SingleThreadedExecutor(context=self.context)
        timeout = float(self.params["service_timeout_s"])
        self.memory = MemoryClient(self._client_node, self.params["memory_node"], timeout_s=timeout,
                                   executor=self._client_executor)
        self._goal: Any = None  # the instruction running: its cancel cancels the running skill
        self.robot = RobotClient(self._client_node, self.params["robot_node"], executor=self._client_executor,
                                 timeout_s=timeout, transport=self.params["skill_transport"],
                                 should_cancel=lambda: self._goal is not None and self._goal.is_cancel_requested)
        self._action = ActionServer(
            self, ExecuteInstruction, "~/execute_instruction", execute_callback=self._execute,
            goal_callback=self._on_goal, cancel_callback=lambda _: CancelResponse.ACCEPT,
            callback_group=ReentrantCallbackGroup())
        self.create_service(srv.GetStats, "~/get_stats", self._get_stats)
        self.get_logger().info(f"planner ready: backend {self.params['backend']}, memory {self.params['memory_node']}, "
                               f"robot {self.params['robot_node']} (in {self.get_namespace()})")

        if self.params["autostart"]:
            self.trigger_configure()
            self.trigger_activate()

    # ------------------------------------------------------------------ lifecycle
    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = True
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = False
        return super().on_deactivate(state)

    # ------------------------------------------------------------------ goals
    def _on_goal(self, goal: ExecuteInstruction.Goal) -> GoalResponse:
        if not self.active:
            self.counters["goals_rejected.not_active"] += 1
            return GoalResponse.REJECT
        if self._busy.locked():
            self.counters["goals_rejected.busy"] += 1
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _execute(self, goal_handle: Any) -> ExecuteInstruction.Result:
        goal = goal_handle.request
        result = ExecuteInstruction.Result(episode_id=-1)
        error = instruction_error(goal.instruction)
        if error or not self._busy.acquire(blocking=False):
            reason = error or "busy"
            self.counters[f"goals_rejected.{reason}"] += 1
            result.reason = f"rejected: {reason}"
            goal_handle.abort()
            return result
        try:
            self.counters["goals_accepted"] += 1
            self._goal = goal_handle
            self._run(goal_handle, goal, result)
        finally:
            self._goal = None
            self._busy.release()
        if goal_handle.is_cancel_requested:
            self.counters["goals_cancelled"] += 1
            goal_handle.canceled()
        elif result.success:
            self.counters["goals_succeeded"] += 1
            goal_handle.succeed()
        else:
            self.counters["goals_failed"] += 1
            goal_handle.abort()
        return result

    def _run(self, goal_handle: Any, goal: ExecuteInstruction.Goal, result: ExecuteInstruction.Result) -> None:
        p = self.params

        def on_step(skill: str, label: str, ok: bool, reason: str, state: Any) -> None:
            feedback = ExecuteInstruction.Feedback(
                stage="executing", step=f"{skill}({label})" if label else skill, step_succeeded=ok, reason=reason,
                skill_calls=int(state.skill_calls - executor.start.skill_calls),
                nav_m=float(state.nav_m - executor.start.nav_m))
            goal_handle.publish_feedback(feedback)
            if goal_handle.is_cancel_requested:
                raise Cancelled("cancelled")

        outcome = Outcome(False)
        tools = CountingTools(RosTools(self.memory))
        executor: Any = None
        try:
            executor = RosExecutor(self.robot, self.memory, on_step=on_step)
            started = executor.now()
            budget = Budget(max_skill_calls=int(goal.max_skill_calls or p["max_skill_calls"]),
                            max_nav_m=float(goal.max_nav_m or p["max_nav_m"]), max_replans=int(p["max_replans"]))
            reference = (convert.time_from_msg(goal.reference_time) if goal.use_reference_time
                         else started - float(p["earlier_s"]))
            agent = Agent(tools, executor, budget, times=dict.fromkeys(TIME_PHRASES, reference),
                          planner=self._planner(tools))
            outcome = agent.run(goal.instruction)
        except ServiceError as exc:  # memory or robot unreachable: the goal fails with the reason
            self.counters["service_errors"] += 1
            outcome.reason = f"error: {exc}"
        except LLMError as exc:  # the LLM server failed (after the client's retries)
            self.counters["llm_errors"] += 1
            outcome.reason = f"error: llm: {exc}"
        except Exception as exc:  # a bug must fail the goal with a reason, not leave it unanswered
            self.counters["errors"] += 1
            self.get_logger().error(f"instruction {goal.instruction!r} failed: {exc}\n{traceback.format_exc(limit=6)}")
            outcome.reason = f"error: {type(exc).__name__}: {exc}"
        self._fill(result, outcome, tools, executor)
        if p["record_experience"] and executor is not None and outcome.intent is not None:
            result.episode_id = self._record(goal.instruction, outcome, started, executor)

    def _planner(self, tools: Any) -> LLMPlanner | None:
        """The LLM planner over this run's tools, or None for the offline planner."""
        p = self.params
        if p["backend"] == "offline":
            return None
        key = os.environ.get(p["llm_api_key_env"]) if p["llm_api_key_env"] else None
        client = ChatClient(p["llm_base_url"], p["llm_model"], api_key=key, timeout_s=float(p["llm_timeout_s"]))
        experience = RosExperience(self.memory) if int(p["llm_examples_k"]) > 0 else None
        choice = p["llm_tool_choice"]
        if choice not in ("auto", "required", "none"):
            choice = {"type": "function", "function": {"name": choice}}
        return LLMPlanner(client, tools, experience, memory_context=bool(p["llm_memory_context"]),
                          context_budget=int(p["llm_context_tokens"]), examples_k=max(1, int(p["llm_examples_k"])),
                          tool_choice=choice, tool_results=p["llm_tool_results"], max_tokens=int(p["llm_max_tokens"]),
                          max_plan_attempts=int(p["llm_max_plan_attempts"]))

    @staticmethod
    def _fill(result: ExecuteInstruction.Result, outcome: Outcome, tools: CountingTools, executor: Any) -> None:
        result.success = bool(outcome.done)
        result.reason = outcome.reason
        result.plans, result.executed = list(outcome.plans), list(outcome.executed)
        result.explore_steps, result.replans = outcome.explore_steps, outcome.replans
        result.invalid_plans, result.planner_calls = outcome.invalid_plans, outcome.planner_calls
        result.memory_queries = int(tools.total)
        result.memory_queries_by_tool = [rmsg.MemoryCounter(name=k, value=int(v))
                                         for k, v in sorted(tools.calls.items())]
        result.llm_turns, result.prompt_tokens = outcome.llm_turns, outcome.prompt_tokens
        result.completion_tokens = outcome.completion_tokens
        if executor is not None:
            spent = executor.spent()
            result.skill_calls, result.nav_m = int(spent.skill_calls), float(spent.nav_m)

    def _record(self, instruction: str, outcome: Outcome, started: float, executor: RosExecutor) -> int:
        """Keep the run in memory's experience (success = the planner's belief; -1 if memory refused)."""
        episode = run_episode(instruction, outcome, bool(outcome.done), "" if outcome.done else outcome.reason,
                              started, executor.now(), robot_id=executor.state.robot_id or "robot")
        try:
            return RosExperience(self.memory).record(episode)
        except ServiceError as exc:
            self.counters["experience_errors"] += 1
            self.get_logger().warning(f"run not kept as experience: {exc}")
            return -1

    def _get_stats(self, request: srv.GetStats.Request, response: srv.GetStats.Response) -> srv.GetStats.Response:
        """The node's counters, and ``resends.<service>``: requests to memory and the robot sent again
        because their answer had not come (robomem.ros.calls)."""
        resent = Counter(dict(self.memory.caller.resends)) + Counter(dict(self.robot.caller.resends))  # copied at once
        counters = self.counters + Counter({f"resends.{name}": n for name, n in resent.items()})
        response.counters = [rmsg.MemoryCounter(name=k, value=int(v)) for k, v in sorted(counters.items())]
        return response

    def close(self) -> None:
        self._action.destroy()
        self.robot.close()
        self._client_executor.shutdown()
        self._client_node.destroy_node()


def main(args: list[str] | None = None) -> int:
    """Entry point (``ros2 run robomem planner_node`` or ``python -m robomem.ros.planner_node``)."""
    return run_node(PlannerNode, args, threads=2)


if __name__ == "__main__":
    sys.exit(main())
