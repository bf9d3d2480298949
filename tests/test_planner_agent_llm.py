"""The agent with the LLM planner in a house (robomem_sim, no fakes): the plans come from a REPLAY server
(a real HTTP server on 127.0.0.1 serving scripted chat completions, see test_planner_llm_replay), the
robot is the simulated one. A correct plan runs; a plan naming a hallucinated object is never executed."""

from __future__ import annotations

import pytest

pytest.importorskip("pybullet")

from house_scenarios import carried_to_bed, remembered  # noqa: E402

from robomem.core import Memory, MemoryConfig  # noqa: E402
from robomem.planner import Agent, Budget, InProcessTools  # noqa: E402
from robomem.planner.llm import LLMPlanner  # noqa: E402
from robomem.planner.llm_client import ChatClient  # noqa: E402
from robomem.planner.replay_server import ReplayServer, completion, tool_call  # noqa: E402
from robomem_sim.house import House, build_house  # noqa: E402
from robomem_sim.house_runner import (  # noqa: E402
    HOUSE_CAMERA,
    HouseExecutor,
    HouseHistory,
    room_viewpoints,
    run_house_task,
)
from robomem_sim.house_tasks import HouseTask, start_robot  # noqa: E402
from robomem_sim.perceive import Eyes, MemoryFeed  # noqa: E402
from robomem_sim.truth import On, snapshot  # noqa: E402

INDEX = 21
pytestmark = [pytest.mark.slow, pytest.mark.data("roomr", "thor")]  # a house; HouseSetup.after reads RoomR


@pytest.fixture(scope="module")
def house() -> House:
    h = build_house(INDEX)
    yield h
    h.close()


@pytest.fixture(scope="module")
def scenario(house: House) -> dict:
    return carried_to_bed(house, INDEX)


class Watched:
    """The real LLM planner; notes what the robot had done each time a plan was asked for."""

    def __init__(self, inner: LLMPlanner, executor: HouseExecutor) -> None:
        self.inner, self.executor, self.asked = inner, executor, []

    def plan(self, instruction, holding=None, feedback=()):
        self.asked.append((self.executor.calls, dict(self.executor.robot.counters), tuple(feedback)))
        return self.inner.plan(instruction, holding, feedback)


def submit(steps: list[dict]) -> dict:
    return completion(tool_calls=[tool_call("submit_plan", {"steps": steps})])


def run(house: House, s: dict, server: ReplayServer, **planner_kwargs) -> tuple:
    memory = remembered(house, s)
    s["setup"].after(house)  # the robot starts in the hallway, the thing on the bed
    eyes = Eyes()
    eyes.feeds.append(MemoryFeed(memory))
    robot = start_robot(house, HOUSE_CAMERA)
    robot.on_frame = eyes.see
    executor = HouseExecutor(house, robot, eyes, room_viewpoints(house))
    tools = InProcessTools(memory)
    client = ChatClient(server.base_url, "replay", timeout_s=5, backoff_s=0.01)
    planner = Watched(LLMPlanner(client, tools, memory_context=False, **planner_kwargs), executor)
    try:
        outcome = Agent(tools, executor, Budget(max_skill_calls=40, max_nav_m=100.0), planner=planner).run(
            s["instruction"])
        done = On(s["thing"], s["holder"]).holds(snapshot(house))
        counters = dict(robot.counters)
    finally:
        house.client.removeBody(robot.body)
        memory.close()
    return outcome, done, counters, executor, planner


def test_agent_runs_the_plan_the_model_submits(house: House, scenario: dict) -> None:
    s = scenario
    with ReplayServer() as server:
        server.push(submit(s["good"]))
        outcome, done, counters, executor, planner = run(house, s, server)
        assert len(server.requests) == 1 and server.remaining == 0
        assert server.requests[0]["messages"][1]["content"] == f"Task: {s['instruction']}\n\nHand: empty"
    assert outcome.done and outcome.reason == "" and done
    assert (outcome.planner_calls, outcome.invalid_plans, outcome.replans, outcome.llm_turns) == (1, 0, 0, 1)
    label, rec = s["label"], s["rec"]
    assert outcome.executed == [f"navigate_to({label})", f"pick({label})", f"navigate_to({rec})", f"place({rec})"]
    assert executor.calls == 4 and counters.get("pick") == 1 and counters.get("place") == 1
    assert counters.get("open", 0) == 0 and outcome.explore_steps == 0
    assert [a[0] for a in planner.asked] == [0]


@pytest.mark.parametrize("attempts", [1, 3])
def test_hallucinated_plan_is_never_executed_and_the_corrected_one_runs(house: House, scenario: dict,
                                                                        attempts: int) -> None:
    """``attempts`` 1: the planner gives up on the bad plan (PlanRejected) and the agent asks again with
    the errors as feedback; 3: the planner sends the errors back to the model itself."""
    s = scenario
    unicorn = [{"skill": "navigate_to", "object": "Unicorn"}, {"skill": "pick", "object": "Unicorn"},
               *s["good"][2:]]
    with ReplayServer() as server:
        server.push(submit(unicorn), submit(s["good"]))
        outcome, done, counters, executor, planner = run(house, s, server, max_plan_attempts=attempts)
        assert len(server.requests) == 2 and server.remaining == 0
        second = server.requests[1]["messages"]
    assert outcome.done and done
    assert executor.calls == 4 and counters.get("pick") == 1 and counters.get("place") == 1
    if attempts == 1:
        assert (outcome.planner_calls, outcome.invalid_plans, outcome.replans, outcome.llm_turns) == (2, 1, 1, 2)
        (first, retry) = planner.asked
        assert first == (0, {}, ()) and retry[:2] == (0, {})  # nothing ran between the two requests
        assert len(retry[2]) == 1 and "'Unicorn' is unknown to memory" in retry[2][0]
        assert "Earlier attempt failed" in second[1]["content"] and "Unicorn" in second[1]["content"]
    else:
        assert (outcome.planner_calls, outcome.invalid_plans, outcome.replans, outcome.llm_turns) == (1, 0, 0, 2)
        assert planner.asked == [(0, {}, ())]
        assert second[-1]["role"] == "tool" and second[-1]["content"].startswith("REJECTED, not executed")
    assert len(outcome.plans) == 1 and "Unicorn" not in outcome.plans[0]


@pytest.mark.data("text_model")  # the house run's memories embed with the offline text model
def test_house_run_with_the_llm_planner_is_recorded_as_experience(house: House, scenario: dict, tmp_path) -> None:
    s = scenario
    db = str(tmp_path / "house.sqlite")
    house.t = 0.0
    remembered(house, s, db).close()
    history = HouseHistory(s["setup"], db, house.t, room_viewpoints(house), house.rooms_config(), 0, frozenset())
    task = HouseTask("t-llm", s["setup"], "simple", "cross_room", s["instruction"], (On(s["thing"], s["holder"]),),
                     (s["thing"],), (s["thing"],), ())
    budget = Budget(max_skill_calls=40, max_nav_m=100.0)
    with ReplayServer() as server:
        server.push(submit(s["good"]), submit(s["good"]))

        def planner(tools):
            return LLMPlanner(ChatClient(server.base_url, "replay", timeout_s=5, backoff_s=0.01), tools,
                              memory_context=False)

        first = run_house_task(task, "full", house, history, budget, record_experience=True, planner=planner)
        plain = run_house_task(task, "full", house, history, budget, planner=planner)  # not recorded
    assert first["success"] and plain["success"] and first["skill_calls"] == 4
    assert (first["planner_calls"], first["llm_turns"], first["invalid_plans"]) == (1, 1, 0)
    assert first["experience_id"] is not None and plain["experience_id"] is None
    memory = Memory(MemoryConfig(db_path=db, rooms=house.rooms_config()))
    try:
        (episode,) = memory.experience.all()
    finally:
        memory.close()
    label, rec = s["label"], s["rec"]
    assert episode.episode_id == first["experience_id"]
    assert (episode.instruction, episode.success, episode.failure_reason) == (s["instruction"], True, "")
    assert episode.plan == [f"navigate_to({label})", f"pick({label})", f"navigate_to({rec})", f"place({rec})"]
    assert episode.objects == [label, rec] and episode.finished > episode.started
