"""Prompt tokens per task with and without memory context in the prompt (the issue's report).

Runs the :class:`~robomem.planner.llm.LLMPlanner` on each instruction in three prompt modes: ``bare``
(instruction only; memory reachable through the tools), ``context`` (+ memory's planner context) and
``context+examples`` (+ few-shot examples from experience memory, when given). Tokens are what the
server reported in ``usage`` (a replay server estimates them; see :mod:`.replay_server`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from robomem.planner.llm import LLMPlanner, PlanRejected
from robomem.planner.llm_client import ChatClient
from robomem.planner.tools import MemoryTools


@dataclass(frozen=True)
class TokenRow:
    """One task in one prompt mode."""

    instruction: str
    mode: str  # bare | context | context+examples
    first_prompt_tokens: int  # the first request: system + instruction (+ context, examples) + tool schemas
    prompt_tokens: int  # all the task's requests
    completion_tokens: int
    turns: int
    outcome: str  # "plan (n steps)" | "rejected (n attempts)"


def measure(client: ChatClient, tools: MemoryTools, instructions: Iterable[str], experience: Any = None,
            **planner_kwargs: Any) -> list[TokenRow]:
    """A :class:`TokenRow` per instruction and mode."""
    modes: list[tuple[str, bool, Any]] = [("bare", False, None), ("context", True, None)]
    if experience is not None:
        modes.append(("context+examples", True, experience))
    rows = []
    for instruction in instructions:
        for mode, with_context, examples in modes:
            planner = LLMPlanner(client, tools, examples, memory_context=with_context, **planner_kwargs)
            try:
                result = planner.plan(instruction)
                rows.append(TokenRow(instruction, mode, result.first_prompt_tokens, result.prompt_tokens,
                                     result.completion_tokens, result.turns, f"plan ({len(result.steps)} steps)"))
            except PlanRejected as rejected:
                rows.append(TokenRow(instruction, mode, rejected.first_prompt_tokens, rejected.prompt_tokens,
                                     rejected.completion_tokens, rejected.turns,
                                     f"rejected ({len(rejected.attempts)} attempts)"))
    return rows


def table(rows: Iterable[TokenRow]) -> str:
    """Rows as a Markdown table."""
    lines = ["| instruction | mode | first prompt | all prompts | completion | turns | outcome |",
             "|---|---|---:|---:|---:|---:|---|"]
    lines += [f"| {r.instruction} | {r.mode} | {r.first_prompt_tokens} | {r.prompt_tokens} | {r.completion_tokens} "
              f"| {r.turns} | {r.outcome} |" for r in rows]
    return "\n".join(lines)
