"""LLM planner backend against a REPLAY server: a real HTTP server on 127.0.0.1 that serves scripted
OpenAI-style chat completions (not a model). Checks what the client parses, what the planner sends,
and that an invalid plan is never returned."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from frames import kitchen_frames

from robomem.core import Memory, MemoryConfig
from robomem.core.experience import TaskEpisode
from robomem.planner import CountingTools, InProcessTools, Plan
from robomem.planner.llm import TOOL_NAMES, LLMPlanner, LLMPlanResult, PlanRejected, calls_in_text
from robomem.planner.llm_client import (
    ChatClient,
    LLMConnectionError,
    LLMHTTPError,
    LLMResponseError,
    LLMTimeout,
    ToolCall,
)
from robomem.planner.replay_server import ReplayServer, Scripted, completion, estimated_usage, tool_call

TASK = "put the mug in the fridge"
GOOD_STEPS = [{"skill": "navigate_to", "object": "Mug"}, {"skill": "pick", "object": "Mug"},
              {"skill": "navigate_to", "object": "Fridge"}, {"skill": "open", "object": "Fridge"},
              {"skill": "place", "object": "Fridge"}, {"skill": "close", "object": "Fridge"}]
EXPECTED = [("navigate_to", "Mug", (1.0, -1.5)), ("pick", "Mug", (1.0, -1.5)),
            ("navigate_to", "Fridge", (2.5, 1.5)), ("open", "Fridge", (2.5, 1.5)),
            ("place", "Fridge", (2.5, 1.5)), ("close", "Fridge", (2.5, 1.5))]


def submit(steps: list[dict] = GOOD_STEPS, call_id: str | None = None) -> dict:
    return completion(tool_calls=[tool_call("submit_plan", {"steps": steps}, call_id)])


def summary(plan: Plan) -> list[tuple[str, str, tuple[float, float]]]:
    return [(s.skill, s.target.label, (round(s.target.center[0], 2), round(s.target.center[1], 2)))
            for s in plan.steps]


@pytest.fixture(scope="module")
def kitchen(tmp_path_factory: pytest.TempPathFactory, text_model) -> Memory:
    """The mug moved from the counter to (1, -1.5); the fridge (closed) holds an apple. (The planner
    context it renders ranks by meaning: the offline text model.)"""
    mem = Memory(MemoryConfig(db_path=str(tmp_path_factory.mktemp("llm") / "kitchen.sqlite")), embedder=text_model)
    for batch in kitchen_frames():
        mem.ingest(batch)
    yield mem
    mem.close()


@pytest.fixture
def server():
    with ReplayServer() as srv:
        yield srv


def planner(srv: ReplayServer, memory: Memory, **kwargs) -> tuple[LLMPlanner, CountingTools]:
    tools = CountingTools(InProcessTools(memory))
    client = ChatClient(srv.base_url, "smollm2-replay", timeout_s=5, backoff_s=0.01)
    return LLMPlanner(client, tools, **kwargs), tools


def tool_messages(request: dict) -> list[dict]:
    return [m for m in request["messages"] if m["role"] == "tool"]


# ---------------------------------------------------------------------------------------------- client


def test_replay_client_sends_openai_body_and_parses_tool_calls_and_usage(server: ReplayServer) -> None:
    server.push(completion(tool_calls=[tool_call("where_is", {"label": "Mug"}, "c1"),
                                       tool_call("contents", '{"receptacle": "Fridge"}', "c2")],
                           usage={"prompt_tokens": 321, "completion_tokens": 17, "total_tokens": 338}),
                completion("hello"))
    client = ChatClient(server.base_url + "/", "m1", api_key="sk-local", timeout_s=5)
    tools = [{"type": "function", "function": {"name": "where_is", "parameters": {"type": "object"}}}]
    reply = client.chat([{"role": "user", "content": "hi"}], tools=tools, tool_choice="auto", max_tokens=64)
    assert reply.tool_calls == [ToolCall("c1", "where_is", '{"label": "Mug"}'),
                                ToolCall("c2", "contents", '{"receptacle": "Fridge"}')]
    assert reply.tool_calls[1].parsed_arguments() == {"receptacle": "Fridge"}
    assert (reply.prompt_tokens, reply.completion_tokens, reply.finish_reason) == (321, 17, "tool_calls")
    body = server.requests[0]
    assert server.paths[0] == "/v1/chat/completions"
    assert server.headers[0]["Authorization"] == "Bearer sk-local"
    assert (body["model"], body["tool_choice"], body["max_tokens"], body["temperature"]) == ("m1", "auto", 64, 0.0)
    assert body["tools"] == tools
    text = client.chat([{"role": "user", "content": "again"}])
    assert (text.content, text.tool_calls) == ("hello", [])
    assert "tools" not in server.requests[1]
    assert text.usage_reported and text.prompt_tokens == estimated_usage(server.requests[1], completion("hello"))[
        "prompt_tokens"]
    assert client.requests == 2 and client.prompt_tokens == 321 + text.prompt_tokens


def test_replay_client_errors_are_typed_and_retried(server: ReplayServer) -> None:
    client = ChatClient(server.base_url, "m", timeout_s=0.3, max_retries=2, backoff_s=0.01)
    server.push(Scripted({"error": "boom"}, 500), Scripted("bad gateway", 502), completion("ok"))
    assert client.chat([{"role": "user", "content": "x"}]).content == "ok"  # two 5xx retried
    assert len(server.requests) == 3
    server.push(Scripted({"error": "bad request"}, 400))
    with pytest.raises(LLMHTTPError) as info:
        client.chat([{"role": "user", "content": "x"}])
    assert info.value.status == 400 and len(server.requests) == 4  # a 4xx is not retried
    server.push(Scripted(completion("late"), delay_s=1.0), completion("in time"))
    assert client.chat([{"role": "user", "content": "x"}]).content == "in time"  # timeout, then retried
    server.push(*[Scripted(completion("late"), delay_s=1.0)] * 3)
    with pytest.raises(LLMTimeout):
        client.chat([{"role": "user", "content": "x"}])
    assert len(server.requests) == 4 + 2 + 3
    server.push(*[Scripted({"error": "down"}, 503)] * 3)
    with pytest.raises(LLMHTTPError) as info:
        client.chat([{"role": "user", "content": "x"}])
    assert info.value.status == 503
    server.push(Scripted("not json", 200), Scripted({"choices": []}, 200))
    with pytest.raises(LLMResponseError):
        client.chat([{"role": "user", "content": "x"}])
    with pytest.raises(LLMResponseError):
        client.chat([{"role": "user", "content": "x"}])


def test_client_connection_refused_is_a_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    client = ChatClient(f"http://127.0.0.1:{port}/v1", "m", timeout_s=1, max_retries=1, backoff_s=0.01)
    with pytest.raises(LLMConnectionError):
        client.chat([{"role": "user", "content": "x"}])


# ---------------------------------------------------------------------------------------------- planner


def test_replay_dialogue_where_is_contents_submit_gives_validated_plan(server: ReplayServer, kitchen) -> None:
    server.push(completion(tool_calls=[tool_call("where_is", {"label": "Mug"}, "w1")]),
                completion(tool_calls=[tool_call("contents", {"receptacle": "Fridge"}, "c1")]),
                submit())
    llm, tools = planner(server, kitchen)
    result = llm.plan(TASK)
    assert isinstance(result, LLMPlanResult) and isinstance(result, Plan)
    assert summary(result) == EXPECTED and summary(result.plan) == EXPECTED
    assert result.steps[0].target == tools.inner.where_is("Mug")  # memory's own record
    assert (result.turns, len(server.requests), result.rejected_attempts, result.tool_errors) == (3, 3, [], [])
    assert [c.name for c in result.tool_calls] == ["where_is", "contents", "submit_plan"]
    first, second, third = server.requests
    assert [t["function"]["name"] for t in first["tools"]] == list(TOOL_NAMES)
    assert first["messages"][0]["role"] == "system" and "navigate_to" in first["messages"][0]["content"]
    user = first["messages"][1]["content"]
    assert user.startswith(f"Task: {TASK}\n\nHand: empty") and "Mug#2 at (1.0, -1.5, 0.8)" in user
    (where,) = tool_messages(second)
    assert where["tool_call_id"] == "w1" and json.loads(where["content"])["at"] == [1.0, -1.5, 0.8]
    assert second["messages"][-2]["tool_calls"][0]["function"]["name"] == "where_is"  # the assistant turn, kept
    contents = json.loads(tool_messages(third)[-1]["content"])
    assert [(r["label"], r["in"]) for r in contents] == [("Apple", "Fridge")]
    # memory was reached only through the counted tools: context, 2 tool calls, resolving + validating 6 steps
    assert tools.calls["planner_context"] == 1 and tools.calls["contents"] == 1
    assert tools.calls["where_is"] == 1 + 6 + 6
    usage = [estimated_usage(r, b) for r, b in zip(server.requests, [{}, {}, {}], strict=True)]
    assert result.prompt_tokens == sum(u["prompt_tokens"] for u in usage) and result.prompt_tokens > 0
    assert result.first_prompt_tokens == usage[0]["prompt_tokens"] < result.prompt_tokens


BAD_CALLS = {
    "malformed_json": (tool_call("submit_plan", '{"steps": [{"skill": "pick", "object": "Mug"}', "bad"),
                       "not a JSON object", "attempt"),
    "unknown_tool": (tool_call("teleport", {"to": "Fridge"}, "bad"), "unknown tool 'teleport'", "tool"),
    "hallucinated_object": (tool_call("submit_plan", {"steps": [{"skill": "navigate_to", "object": "Unicorn"},
                                                                {"skill": "pick", "object": "Unicorn"}]}, "bad"),
                            "'Unicorn' is unknown to memory", "attempt"),
    "garbled_name": (tool_call("submit_plan", {"steps": [{"skill": "navigate_to", "object": "Mug#2&amp;Fridge#3"}]},
                               "bad"), "'Mug#2&amp;Fridge#3' is unknown to memory", "attempt"),
    "invalid_skill": (tool_call("submit_plan", {"steps": [{"skill": "fly_to", "object": "Mug"}]}, "bad"),
                      "unknown skill 'fly_to'", "attempt"),
    "bad_where_is_args": (tool_call("where_is", {"name": "Mug"}, "bad"), "'label' must be a non-empty string",
                          "tool"),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_replay_bad_call_is_rejected_sent_back_then_corrected_plan_accepted(server, kitchen, case: str) -> None:
    bad, error, kind = BAD_CALLS[case]
    server.push(completion(tool_calls=[bad]), submit())
    llm, _ = planner(server, kitchen)
    result = llm.plan(TASK)
    assert summary(result) == EXPECTED and result.turns == 2
    (sent,) = tool_messages(server.requests[1])
    assert sent["tool_call_id"] == "bad" and error in sent["content"]
    if kind == "attempt":
        assert sent["content"].startswith("REJECTED, not executed")
        assert len(result.rejected_attempts) == 1 and any(error in e for e in result.rejected_attempts[0])
        assert result.tool_errors == []
    else:
        assert sent["content"].startswith("ERROR:") and result.rejected_attempts == []
        assert len(result.tool_errors) == 1 and error in result.tool_errors[0]


def test_replay_pick_with_full_hand_is_rejected(server, kitchen) -> None:
    server.push(submit(), submit(GOOD_STEPS[2:]))
    llm, _ = planner(server, kitchen)
    result = llm.plan(TASK, holding="Mug")
    assert summary(result) == EXPECTED[2:]
    assert "Hand: holding Mug" in server.requests[0]["messages"][1]["content"]
    assert result.rejected_attempts == [["step 1: pick Mug with a full hand"]]


def test_replay_model_that_never_gives_a_valid_plan_raises_plan_rejected(server, kitchen) -> None:
    unicorn = [{"skill": "pick", "object": "Unicorn"}]
    server.push(submit(unicorn), completion("I would put the mug in the fridge."), submit([{"skill": "pick"}]),
                submit())  # a valid plan the planner must never reach
    llm, tools = planner(server, kitchen, max_plan_attempts=3)
    with pytest.raises(PlanRejected) as info:
        llm.plan(TASK)
    rejected = info.value
    assert len(rejected.attempts) == 3 and rejected.turns == 3 and len(server.requests) == 3
    assert "'Unicorn' is unknown to memory" in rejected.attempts[0][0]
    assert "no tool call" in rejected.attempts[1][0]
    assert "'object' must be a non-empty string" in rejected.attempts[2][0]
    assert server.remaining == 1 and rejected.prompt_tokens > 0
    # the plain-text answer was answered with a reminder to use the tools
    assert server.requests[2]["messages"][-1] == {"role": "user",
                                                  "content": "Use the tools. Finish by calling submit_plan."}


def test_replay_max_turns_bounds_a_model_that_only_asks(server, kitchen) -> None:
    server.push(*[completion(tool_calls=[tool_call("where_is", {"label": "Mug"})]) for _ in range(5)])
    llm, _ = planner(server, kitchen, max_turns=4)
    with pytest.raises(PlanRejected) as info:
        llm.plan(TASK)
    assert info.value.turns == 4 and info.value.attempts == [] and server.remaining == 1


def test_replay_tool_call_written_as_text_is_parsed(server, kitchen) -> None:
    text = '<tool_call>\n{"name": "submit_plan", "arguments": ' + json.dumps({"steps": GOOD_STEPS}) + "}\n</tool_call>"
    server.push(completion(text))
    llm, _ = planner(server, kitchen)
    assert summary(llm.plan(TASK)) == EXPECTED
    assert calls_in_text("no call here") == [] and calls_in_text('{"name": "x", "arguments": "{}"}')[0].name == "x"


def test_replay_memory_context_flag_and_prompt_tokens(server, kitchen) -> None:
    server.push(submit(), submit())
    with_ctx, tools_a = planner(server, kitchen)
    without, tools_b = planner(server, kitchen, memory_context=False)
    a, b = with_ctx.plan(TASK), without.plan(TASK)
    assert summary(a) == summary(b) == EXPECTED
    user_a, user_b = (r["messages"][1]["content"] for r in server.requests)
    assert "Memory at t=27.0" in user_a and "Memory at t=" not in user_b
    assert user_b == f"Task: {TASK}\n\nHand: empty"
    assert tools_a.calls["planner_context"] == 1 and tools_b.calls["planner_context"] == 0
    assert a.first_prompt_tokens > b.first_prompt_tokens


def test_replay_few_shot_examples_from_experience(tmp_path: Path, server: ReplayServer, text_model) -> None:
    memory = Memory(MemoryConfig(db_path=str(tmp_path / "home.sqlite")), embedder=text_model)
    try:
        for batch in kitchen_frames():
            memory.ingest(batch)
        memory.experience.record(TaskEpisode(
            robot_id="r1", instruction="put the apple in the fridge", success=True, objects=["Apple", "Fridge"],
            plan=["navigate_to(Apple)", "pick(Apple)", "navigate_to(Fridge)", "open(Fridge)", "place(Fridge)"],
            started=0.0, finished=5.0))
        memory.experience.record(TaskEpisode(
            robot_id="r1", instruction="put the cup in the fridge", success=False, failure_reason="dropped",
            plan=["pick(Cup)"], objects=["Cup", "Fridge"], started=6.0, finished=9.0))
        memory.experience.record(TaskEpisode(
            robot_id="r1", instruction="turn on the TV", success=True, plan=["toggle_on(Television)"],
            objects=["Television"], started=10.0, finished=12.0))
        server.push(submit(), submit())
        llm, _ = planner(server, memory, experience=memory.experience, examples_k=1)
        llm.plan(TASK)
        user = server.requests[0]["messages"][1]["content"]
        assert "Similar past tasks:\n\nTask: put the apple in the fridge\nPlan: navigate_to(Apple);" in user
        assert "cup" not in user and "Television" not in user  # failed runs and the unrelated one left out
        plain, _ = planner(server, memory, experience=lambda instruction: "")
        plain.plan(TASK)
        assert "Similar past tasks" not in server.requests[1]["messages"][1]["content"]
    finally:
        memory.close()


def test_replay_tool_results_as_user_message_for_templates_that_drop_tool_messages(server, kitchen) -> None:
    server.push(completion(tool_calls=[tool_call("where_is", {"label": "Mug"}), tool_call("what_changed",
                                                                                          {"since_s": 10})]),
                submit([{"skill": "pick", "object": "Unicorn"}]), submit())
    llm, tools = planner(server, kitchen, tool_results="user")
    assert summary(llm.plan(TASK)) == EXPECTED
    second, third = server.requests[1:]
    assert tool_messages(second) == [] and tool_messages(third) == []
    results = second["messages"][-1]
    assert results["role"] == "user" and results["content"].startswith('Result of where_is: {"label": "Mug"')
    changes = json.loads(results["content"].split("Result of what_changed: ", 1)[1])
    assert [(c["label"], c["change"]) for c in changes] == [("Mug", "moved"), ("Fridge", "closed")]
    assert third["messages"][-1]["content"].startswith("Result of submit_plan: REJECTED, not executed")
    assert tools.calls["what_changed"] == 1
    with pytest.raises(ValueError):
        LLMPlanner(ChatClient(server.base_url, "m"), tools, tool_results="system")


def test_replay_context_names_resolve_and_goal_check_rejects_a_valid_but_useless_plan(server, kitchen) -> None:
    useless = [{"skill": "toggle_on", "object": "Mug#2"}, {"skill": "open", "object": "Fridge#3"}]  # as 135M wrote
    server.push(submit(useless), submit([{**s, "object": s["object"] + "#9"} for s in GOOD_STEPS]))

    def places_in_fridge(instruction: str, plan: Plan) -> list[str]:
        ok = any(s.skill == "place" and s.target.label == "Fridge" for s in plan.steps)
        return [] if ok else ["the plan never places anything in the Fridge"]

    llm, _ = planner(server, kitchen, goal_check=places_in_fridge)
    result = llm.plan(TASK)
    assert summary(result) == EXPECTED  # 'Mug#9' names the Mug: the id is not checked, the label is
    assert result.rejected_attempts == [["the plan never places anything in the Fridge"]]
    server.push(submit(useless))
    plain, _ = planner(server, kitchen)
    assert [s.skill for s in plain.plan(TASK).steps] == ["toggle_on", "open"]  # plan.validate alone lets it pass


RECORDED = Path(__file__).resolve().parent / "llm_recorded_smollm2.json"


def test_replay_of_recorded_smollm2_answers_is_validated(server, kitchen) -> None:
    """Real SmolLM2-135M answers (recorded from llama_cpp.server, see the file's 'source'), replayed."""
    server.push(*json.loads(RECORDED.read_text())["responses"])
    force = {"type": "function", "function": {"name": "submit_plan"}}
    runs = [("put the mug in the fridge", True), ("bring me the book", True), ("put the mug in the fridge", False)]
    outcomes = []
    for task, with_context in runs:
        llm, _ = planner(server, kitchen, memory_context=with_context, tool_choice=force, tool_results="user",
                         max_turns=1, max_plan_attempts=1)
        try:
            outcomes.append(summary(llm.plan(task)))
        except PlanRejected as rejected:
            outcomes.append(rejected.attempts)
    assert outcomes[0] == [("toggle_on", "Mug", (1.0, -1.5)), ("open", "Fridge", (2.5, 1.5))]  # valid, useless
    assert outcomes[1] == [["step 0: './fridge.mug#2' is unknown to memory",
                            "step 1: './fridge_1#3' is unknown to memory"]]
    assert outcomes[2] == [["step 0: 'near' must be [x, y]", "step 0: '][' is unknown to memory"]]
    assert [r["tool_choice"] for r in server.requests] == [force] * 3
