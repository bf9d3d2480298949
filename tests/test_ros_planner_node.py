"""The planner node over real DDS: memory node and planner nodes in their own processes, the simulated
robot (PyBullet house) served by the robot node in this process. The planner asks memory only through
its services and drives the robot only through ``execute_skill``; what it did is checked on the
simulator's true state, on what memory learned through the robot's published observations, and on
the experience memory kept."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ros_helpers import require_ros

require_ros()
pytest.importorskip("pybullet")

from house_scenarios import carried_to_bed, remembered  # noqa: E402
from ros_helpers import NodeProcess, call, caller, ros_env, wait_for  # noqa: E402

from robomem import srv  # noqa: E402
from robomem.action import ExecuteInstruction  # noqa: E402
from robomem.core.experience import TaskEpisode  # noqa: E402
from robomem.planner.replay_server import ReplayServer, completion, tool_call  # noqa: E402
from robomem.ros import convert  # noqa: E402
from robomem.ros.instruct import planner_client, request_goal, send_goal, wait_result  # noqa: E402
from robomem_sim.house import build_house  # noqa: E402
from robomem_sim.house_runner import HOUSE_CAMERA, HouseExecutor, room_viewpoints  # noqa: E402
from robomem_sim.house_tasks import start_robot  # noqa: E402
from robomem_sim.perceive import Eyes  # noqa: E402
from robomem_sim.robot_node import SimRobotNode, spinning  # noqa: E402
from robomem_sim.truth import On, snapshot  # noqa: E402

INDEX = 21
#: a house (HouseSetup.after reads RoomR), nodes whose memory ranks by meaning (the offline text model)
pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.data("roomr", "thor", "text_model")]
VENV_BIN = Path(sys.executable).parent
MEMORY, ROBOT = "pn_memory", "pn_robot"


@pytest.fixture(scope="module")
def world(ros, tmp_path_factory):
    """The house with the scenario, memory of it (node on a copy), the robot node, an offline planner node."""
    folder = tmp_path_factory.mktemp("planner_node")
    house = build_house(INDEX)
    s = carried_to_bed(house, INDEX)
    house.t = 0.0
    remembered(house, s, str(folder / "morning.sqlite")).close()
    shutil.copyfile(folder / "morning.sqlite", folder / "memory.sqlite")
    robot_node = SimRobotNode(ROBOT, context=ros.context)
    memory = NodeProcess("robomem.ros.memory_node", {"db_path": str(folder / "memory.sqlite")}, MEMORY)
    client = planner_client(ros, "pn_planner")  # kept for every goal (see planner_client)
    planner = NodeProcess("robomem.ros.planner_node", {"memory_node": MEMORY, "robot_node": ROBOT}, "pn_planner")
    with spinning(robot_node):
        yield {"house": house, "s": s, "robot_node": robot_node, "memory": memory, "planner": planner,
               "client": client, "rooms": room_viewpoints(house), "folder": folder}
        client.destroy()
        planner.stop()
        memory.stop()
    robot_node.destroy_node()
    house.close()


def new_task(world: dict, memory: str = MEMORY) -> HouseExecutor:
    """The after-state, a fresh robot in the hallway whose eyes publish to memory, served by the robot node."""
    world["robot_node"].wait_for_memory(memory)
    house, s = world["house"], world["s"]
    s["setup"].after(house)
    eyes = Eyes(robot=world["robot_node"].robot_id)
    eyes.feeds.append(world["robot_node"].observations)
    robot = start_robot(house, HOUSE_CAMERA)
    robot.on_frame = eyes.see
    executor = HouseExecutor(house, robot, eyes, world["rooms"])
    world["robot_node"].attach(executor)
    return executor


def end_task(world: dict, executor: HouseExecutor) -> None:
    world["robot_node"].attach(None)
    world["house"].client.removeBody(executor.robot.body)


def send(ros, planner, goal: ExecuteInstruction.Goal, feedback: list | None = None, timeout: float = 120.0):
    """Send ``goal`` to ``planner`` (an action client); (goal handle, result response or None if rejected)."""
    return send_goal(ros, planner, goal, feedback.append if feedback is not None else None, timeout)


def planner_counters(ros, planner: str) -> dict[str, int]:
    return {c.name: c.value for c in call(ros, srv.GetStats, f"/{planner}/get_stats", srv.GetStats.Request()).counters}


def test_offline_planner_node_carries_out_an_instruction(ros, world) -> None:
    from action_msgs.msg import GoalStatus

    s = world["s"]
    label, rec = s["label"], s["rec"]
    executor = new_task(world)
    started = world["house"].t
    feedback: list = []
    try:
        _, answer = send(ros, world["client"], ExecuteInstruction.Goal(instruction=s["instruction"]), feedback)
        truth = snapshot(world["house"])
        published = world["robot_node"].observations.published
        now_at = world["house"].center(s["thing"])
    finally:
        end_task(world, executor)
    result = answer.result
    assert answer.status == GoalStatus.STATUS_SUCCEEDED and result.success and result.reason == ""
    assert On(s["thing"], s["holder"]).holds(truth)  # the simulator's true state: done
    assert list(result.executed) == [f"navigate_to({label})", f"pick({label})", f"navigate_to({rec})",
                                     f"place({rec})"]
    wait_for(lambda: len(feedback) >= result.skill_calls, ros, timeout=5.0)  # feedback may trail the result
    assert result.skill_calls == executor.calls == len(feedback) >= 4
    assert [f.step for f in feedback if f.step_succeeded][-4:] == list(result.executed)
    queries = {c.name: c.value for c in result.memory_queries_by_tool}
    assert result.memory_queries == sum(queries.values()) and queries.get("where_is", 0) >= 2
    assert result.invalid_plans == 0 and result.explore_steps == 0
    # memory takes every batch the robot's camera published (over DDS; the last ones may still be on the
    # way when the result comes): then it knows where the thing is now
    def taken() -> int:
        stats = call(ros, srv.GetStats, f"/{MEMORY}/get_stats", srv.GetStats.Request())
        return dict(zip(stats.robot_ids, stats.last_sequences, strict=True)).get(world["robot_node"].robot_id, 0)

    assert published > 0 and wait_for(lambda: taken() >= published, ros, timeout=30.0)
    assert taken() == published
    where = call(ros, srv.WhereIs, f"/{MEMORY}/where_is", srv.WhereIs.Request(label=label))
    assert where.found and convert.time_from_msg(where.object.last_seen) > started
    assert math.dist(convert.xyz(where.object.center), now_at) < 0.3
    # the run is kept as experience, with the plan that ran
    assert result.episode_id >= 0
    similar = call(ros, srv.SimilarEpisodes, f"/{MEMORY}/similar_episodes",
                   srv.SimilarEpisodes.Request(instruction=s["instruction"], k=1))
    (episode,) = similar.episodes
    assert (episode.episode_id, episode.instruction, episode.success) == (result.episode_id, s["instruction"], True)
    assert list(episode.plan) == list(result.executed) and label in episode.objects


def test_robomem_instruct_sends_an_instruction_from_the_command_line(world) -> None:
    """``robomem instruct`` (its own process, a new client): progress lines, the outcome, exit code 0.
    Memory and planner nodes of its own: the same morning memory as the first test."""
    s, folder = world["s"], world["folder"]
    shutil.copyfile(folder / "morning.sqlite", folder / "cli.sqlite")
    params = {"memory_node": "pn_cli_memory", "robot_node": ROBOT}
    with NodeProcess("robomem.ros.memory_node", {"db_path": str(folder / "cli.sqlite")}, "pn_cli_memory"), \
            NodeProcess("robomem.ros.planner_node", params, "pn_cli_planner"):
        executor = new_task(world, "pn_cli_memory")
        try:
            done = subprocess.run([str(VENV_BIN / "robomem"), "instruct", s["instruction"], "--planner",
                                   "pn_cli_planner"], env=ros_env(), capture_output=True, text=True, timeout=180)
            truth = snapshot(world["house"])
        finally:
            end_task(world, executor)
    assert done.returncode == 0, done.stdout + done.stderr
    assert On(s["thing"], s["holder"]).holds(truth)
    lines = done.stdout.strip().splitlines()
    assert f"pick({s['label']})" in done.stdout and lines[-1].startswith("done: 4 steps")
    assert len(lines) == executor.calls + 1  # a line per skill, then the outcome


def test_bad_goals_are_refused_with_a_reason_and_counted(ros, world) -> None:
    from action_msgs.msg import GoalStatus

    before = planner_counters(ros, "pn_planner")
    for text, reason in (("   ", "empty_instruction"), ("put " * 600, "instruction_too_long")):
        _, answer = send(ros, world["client"], ExecuteInstruction.Goal(instruction=text))
        assert answer.status == GoalStatus.STATUS_ABORTED and answer.result.reason == f"rejected: {reason}"
        assert answer.result.skill_calls == 0 and not answer.result.success
    after = planner_counters(ros, "pn_planner")
    assert after.get("goals_rejected.empty_instruction", 0) == before.get("goals_rejected.empty_instruction", 0) + 1
    assert after.get("goals_rejected.instruction_too_long", 0) == before.get("goals_rejected.instruction_too_long",
                                                                             0) + 1
    assert world["planner"].alive()


def test_a_second_goal_is_rejected_while_one_runs_and_cancel_stops_the_robot(ros, world) -> None:
    from action_msgs.msg import GoalStatus

    executor = new_task(world)
    feedback: list = []
    client = world["client"]
    try:
        assert wait_for(client.server_is_ready, ros, timeout=30.0)
        # accepted, or its answer lost (None): feedback for this goal id shows it runs
        first, accepted = request_goal(ros, client, ExecuteInstruction.Goal(instruction="bring me the apple"),
                                       feedback.append)
        assert accepted is not False
        assert wait_for(lambda: feedback, ros, timeout=60.0), "no feedback from the running goal"
        _, second = send(ros, client, ExecuteInstruction.Goal(instruction="turn on the lamp"))
        assert second is None  # not accepted: the robot is busy
        first.cancel_goal_async()  # its answer is not needed: the result tells
        answer = wait_result(ros, first, timeout_s=120.0)
    finally:
        end_task(world, executor)
    assert answer.status == GoalStatus.STATUS_CANCELED and answer.result.reason == "cancelled"
    # the run stopped right after the skill during which the cancel came (an exploring search takes far more)
    assert executor.calls <= len(feedback) + 1 and answer.result.skill_calls == executor.calls
    assert planner_counters(ros, "pn_planner").get("goals_rejected.busy", 0) >= 1


def test_skill_requests_with_bad_input_never_reach_the_robot(ros, world) -> None:
    executor = new_task(world)
    try:
        name = f"/{ROBOT}/execute_skill"
        for request, reason in (
            (srv.ExecuteSkill.Request(skill="fly", label="Apple"), "unknown_skill"),
            (srv.ExecuteSkill.Request(skill="pick", label=" "), "empty_label"),
            (srv.ExecuteSkill.Request(skill="navigate_to", label="Apple",
                                      position=convert.point_to_msg([math.nan, 0.0, 0.0])), "non_finite"),
        ):
            response = call(ros, srv.ExecuteSkill, name, request)
            assert not response.success and response.reason == f"rejected: {reason}"
            assert world["robot_node"].counters[f"rejected_requests.{reason}"] >= 1
        assert executor.calls == 0 and executor.robot.nav_distance_m == 0.0
        ok = call(ros, srv.ExecuteSkill, name, srv.ExecuteSkill.Request(skill="look_around"))
        assert ok.success and ok.state.skill_calls == 1 and executor.calls == 1
        # a request sent again with the same id (its answer was lost) is answered, not run again
        repeats, resends = world["robot_node"].counters["repeated_requests.execute_skill"], caller(ros).resends[name]
        first = call(ros, srv.ExecuteSkill, name, srv.ExecuteSkill.Request(skill="look_around", request_id=77))
        again = call(ros, srv.ExecuteSkill, name, srv.ExecuteSkill.Request(skill="look_around", request_id=77))
        assert first.success and again.success and executor.calls == 2
        assert again.state.skill_calls == first.state.skill_calls == 2
        # one repeat sent here, plus any the caller sent because an answer was slow or lost
        assert (world["robot_node"].counters["repeated_requests.execute_skill"] - repeats
                == 1 + caller(ros).resends[name] - resends)
    finally:
        end_task(world, executor)


def submit(steps: list[dict]) -> dict:
    return completion(tool_calls=[tool_call("submit_plan", {"steps": steps})])


def test_llm_backend_node_rejects_a_hallucinated_plan_and_runs_the_corrected_one(ros, world) -> None:
    """The LLM backend against a REPLAY server (real HTTP on 127.0.0.1, scripted answers): the first plan
    names an object memory does not know and is never executed; the corrected one runs. Few-shot examples
    come from the memory node's experience."""
    s = world["s"]
    unicorn = [{"skill": "navigate_to", "object": "Unicorn"}, {"skill": "pick", "object": "Unicorn"},
               *s["good"][2:]]
    shutil.copyfile(world["folder"] / "morning.sqlite", world["folder"] / "llm.sqlite")  # this morning's memory
    example = TaskEpisode(robot_id="robot", instruction="put the pen on the desk", plan=[
        "navigate_to(Pen)", "pick(Pen)", "navigate_to(Desk)", "place(Desk)"], success=True, objects=["Pen", "Desk"],
        started=1.0, finished=2.0)
    with ReplayServer() as server, NodeProcess("robomem.ros.memory_node", {"db_path": str(
            world["folder"] / "llm.sqlite")}, "pn_llm_memory"):
        recorded = call(ros, srv.RecordEpisode, "/pn_llm_memory/record_episode",
                        srv.RecordEpisode.Request(episode=convert.episode_to_msg(example)), timeout=30.0)
        assert recorded.accepted
        server.push(submit(unicorn), submit(s["good"]))
        params = {"memory_node": "pn_llm_memory", "robot_node": ROBOT, "backend": "llm",
                  "llm_base_url": server.base_url, "llm_model": "replay", "llm_memory_context": False,
                  "llm_examples_k": 2}
        client = planner_client(ros, "pn_llm_planner")
        with NodeProcess("robomem.ros.planner_node", params, "pn_llm_planner") as node:
            executor = new_task(world, "pn_llm_memory")
            try:
                _, answer = send(ros, client, ExecuteInstruction.Goal(instruction=s["instruction"]))
                truth = snapshot(world["house"])
            finally:
                end_task(world, executor)
                client.destroy()
            assert node.alive()
        requests = list(server.requests)
    result = answer.result
    assert result.success and On(s["thing"], s["holder"]).holds(truth)
    assert len(requests) == 2 and server.remaining == 0
    assert requests[1]["messages"][-1]["role"] == "tool"
    assert requests[1]["messages"][-1]["content"].startswith("REJECTED, not executed")
    assert all("Unicorn" not in step for step in result.executed) and len(result.executed) == 4
    assert result.skill_calls == executor.calls == 4
    assert result.llm_turns == 2 and result.prompt_tokens > 0
    # experience from the memory node comes back as a few-shot example
    prompt = requests[0]["messages"][1]["content"]
    assert "Similar past tasks:" in prompt and "put the pen on the desk" in prompt


def test_planner_reports_an_unreachable_robot_instead_of_hanging(ros, world) -> None:
    from action_msgs.msg import GoalStatus

    params = {"memory_node": MEMORY, "robot_node": "nobody_here", "service_timeout_s": 2.0}
    client = planner_client(ros, "pn_lonely_planner")
    with NodeProcess("robomem.ros.planner_node", params, "pn_lonely_planner") as node:
        started = time.monotonic()
        _, answer = send(ros, client, ExecuteInstruction.Goal(instruction="bring me the apple"))
        client.destroy()
        assert time.monotonic() - started < 30 and node.alive()
    assert answer.status == GoalStatus.STATUS_ABORTED
    assert answer.result.reason.startswith("error:") and "get_state" in answer.result.reason
