"""LLM planner backend: an instruction becomes a validated :class:`~robomem.planner.plan.Plan` through an
OpenAI-compatible chat model with tool calling (llama.cpp server, vLLM, Ollama; see :mod:`.llm_client`).

The model asks memory through function tools (``where_is``, ``contents``, ``what_changed``,
``last_seen``, ``search``, ``planner_context``, ``likely_places``) that run through the
:class:`~robomem.planner.tools.MemoryTools` protocol only, and ends with ``submit_plan``. A submitted
plan is parsed, every object resolved to memory's record with ``tools.where_is`` and the plan checked
with :func:`~robomem.planner.plan.validate`; malformed arguments, unknown tools or skills, objects memory
does not know and invalid sequences are sent back to the model as the tool's result, and it tries again.
An invalid plan is never returned: after ``max_plan_attempts`` rejected attempts (or ``max_turns``
requests) :class:`PlanRejected` is raised with every attempt's errors.

Optionally the prompt carries memory's planner context (``tools.planner_context``) and few-shot examples
of similar successful runs from experience memory (``memory.experience.render_examples``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Protocol

from robomem.planner.llm_client import ChatClient, ChatReply, ToolCall
from robomem.planner.plan import RECEPTACLE_OPENABLE, SKILLS, Plan, validate
from robomem.planner.tools import ChangeRecord, MemoryTools, ObjectRecord

SUBMIT = "submit_plan"
MAX_STEPS = 24
MAX_LIST = 20  # records in one tool result
MAX_TEXT = 200  # characters of a text argument


class Planner(Protocol):
    """What a planning backend offers the agent: an instruction (and what the robot holds) to a plan
    that has passed :func:`~robomem.planner.plan.validate` against memory (``feedback``: why earlier
    plans failed when executed), or :class:`PlanRejected`."""

    def plan(self, instruction: str, holding: str | None = None, feedback: Sequence[str] = ()) -> Plan: ...


def _str_arg(name: str, description: str) -> dict[str, Any]:
    return {"type": "object", "properties": {name: {"type": "string", "description": description}},
            "required": [name]}


def _function(name: str, description: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


LABEL = "object type, e.g. Mug"
MEMORY_TOOLS: list[dict[str, Any]] = [
    _function("where_is", "Where memory believes an object is now (position, holder, states).",
              _str_arg("label", LABEL)),
    _function("contents", "The objects memory believes are in or on a receptacle.", _str_arg("receptacle", LABEL)),
    _function("what_changed", "Object changes memory noticed since a time (moved, appeared, disappeared, ...).",
              {"type": "object", "properties": {"since_s": {"type": "number", "description": "memory time, s"}},
               "required": ["since_s"]}),
    _function("last_seen", "When memory last saw an object (memory time, s).", _str_arg("label", LABEL)),
    _function("search", "Object types in memory whose meaning matches a text, e.g. 'something to drink from'.",
              _str_arg("text", "words describing the object")),
    _function("planner_context", "A compact text summary of what memory knows that is relevant to a query.",
              _str_arg("query", "what you need to know")),
    _function("likely_places", "Where an object memory has not seen (or lost) is probably kept: receptacles, "
              "best first, with a score and the reason.", _str_arg("label", LABEL)),
]
SUBMIT_TOOL = _function(
    SUBMIT, "Submit the final plan: skill calls in order. Call it once you know where every object is.",
    {"type": "object", "required": ["steps"], "properties": {"steps": {
        "type": "array", "description": "the skill calls, in order", "maxItems": MAX_STEPS,
        "items": {"type": "object", "required": ["skill", "object"], "properties": {
            "skill": {"type": "string", "enum": list(SKILLS)},
            "object": {"type": "string", "description": LABEL},
            "near": {"type": "array", "items": {"type": "number"},
                     "description": "optional [x, y]: the instance closest to this point"},
        }},
    }}},
)
TOOLS = [*MEMORY_TOOLS, SUBMIT_TOOL]
TOOL_NAMES = tuple(t["function"]["name"] for t in TOOLS)

SYSTEM_PROMPT = f"""You plan for a household robot. Skills (one object each): {", ".join(SKILLS)}.
Rules:
- Use only objects memory knows; ask memory with the tools (where_is, contents, search, ...).
- navigate_to an object before pick, place, open, close, toggle_on or toggle_off on it.
- pick needs an empty hand and holds one object; place puts the held object in or on the target.
- open a closed {", ".join(sorted(RECEPTACLE_OPENABLE))} before taking from or placing into it; only openable
  objects can be opened or closed.
- When done, call {SUBMIT} with the steps. A rejected plan is not executed: fix the errors and submit again."""


class PlanRejected(RuntimeError):
    """The model gave no valid plan: every rejected attempt's errors, the other tool errors, and what the
    task cost (``turns``, ``prompt_tokens``, ``first_prompt_tokens``, ``completion_tokens``, ``transcript``)."""

    def __init__(self, spent: LLMPlanResult) -> None:
        attempts = spent.rejected_attempts
        last = "; ".join(attempts[-1]) if attempts else "none submitted"
        super().__init__(f"no valid plan after {len(attempts)} rejected attempts in {spent.turns} turns "
                         f"(last errors: {last})")
        self.attempts = attempts
        self.tool_errors = spent.tool_errors
        self.turns = spent.turns
        self.prompt_tokens = spent.prompt_tokens
        self.first_prompt_tokens = spent.first_prompt_tokens
        self.completion_tokens = spent.completion_tokens
        self.tool_calls = spent.tool_calls
        self.transcript = spent.transcript


@dataclass
class LLMPlanResult(Plan):
    """A validated plan (it is a :class:`Plan`: ``steps``) and what getting it cost.

    ``prompt_tokens``/``completion_tokens``: summed over the task's requests, as the server reported
    them; ``first_prompt_tokens``: the first request's prompt (system + instruction + context + tools)."""

    turns: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    first_prompt_tokens: int = 0
    tool_calls: list[ToolCall] = field(default_factory=list)
    rejected_attempts: list[list[str]] = field(default_factory=list)
    tool_errors: list[str] = field(default_factory=list)  # errors sent back for other calls (unknown tool, bad args)
    usage_reported: bool = True
    transcript: list[dict[str, Any]] = field(default_factory=list, repr=False, compare=False)

    @property
    def plan(self) -> Plan:
        """The steps as a plain :class:`Plan`."""
        return Plan(list(self.steps))


Examples = Callable[[str], str]


def _round(values: Sequence[float]) -> list[float]:
    return [round(float(v), 2) for v in values]


def record_json(rec: ObjectRecord) -> dict[str, Any]:
    """An object record as a tool result shows it."""
    out: dict[str, Any] = {"label": rec.label, "at": _round(rec.center)}
    if rec.receptacle:
        out[rec.relation or "near"] = rec.receptacle
    if rec.state:
        out["state"] = {k: v for k, v in rec.state.items() if isinstance(v, (bool, int, float, str))}
    if rec.last_seen is not None:
        out["last_seen"] = round(float(rec.last_seen), 1)
    return out


def change_json(change: ChangeRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"label": change.label, "change": change.change}
    if change.center is not None:
        out["at"] = _round(change.center)
    if change.t is not None:
        out["t"] = round(float(change.t), 1)
    return out


def _text_arg(args: dict[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"argument {key!r} must be a non-empty string")
    if len(value) > MAX_TEXT:
        raise ValueError(f"argument {key!r} is over {MAX_TEXT} characters")
    return value.strip()


_NAME = re.compile(r"\s*([A-Za-z][A-Za-z0-9 _-]{0,63}?)\s*(?:#\d+)?\s*")


def _label(name: str) -> str:
    """The label in what the model wrote: 'Mug' or a context name 'Mug#3' -> 'Mug'; anything else
    ('Mug#2&amp;Fridge', './fridge.mug') is kept whole, so memory does not know it."""
    m = _NAME.fullmatch(name)
    return m.group(1) if m else name.strip()


_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)


def calls_in_text(content: str | None, prefix: str = "text") -> list[ToolCall]:
    """Tool calls written as JSON in the reply's text, for servers that do not parse them: a
    ``{"name": ..., "arguments": {...}}`` object or a list of them, bare or in ``<tool_call>`` tags."""
    if not content or "name" not in content:
        return []
    blobs = _TAGGED.findall(content) or [content.strip()]
    calls: list[ToolCall] = []
    for blob in blobs:
        blob = re.sub(r"^```(?:json)?\s*|\s*```$", "", blob.strip())
        try:
            value = json.loads(blob)
        except json.JSONDecodeError:
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                args = item.get("arguments", item.get("parameters", {}))
                calls.append(ToolCall(f"{prefix}_{len(calls)}", item["name"],
                                      args if isinstance(args, str) else json.dumps(args)))
    return calls


@dataclass(eq=False, repr=False)  # compared and shown as an object, as before
class LLMPlanner:
    """Plans with a chat model through tool calls; satisfies :class:`Planner`.

    ``experience``: an object with ``render_examples(instruction, k=, token_budget=)`` (e.g.
    ``memory.experience``) or a callable ``instruction -> text``; ``memory_context``: put
    ``tools.planner_context(instruction, context_budget)`` in the prompt (turn off to compare tokens);
    ``tool_results``: ``"tool"`` (OpenAI tool messages) or ``"user"`` (one user message per turn, for chat
    templates that drop tool messages, e.g. llama-cpp-python's ``chatml-function-calling``);
    ``goal_check``: ``(instruction, plan) -> errors``, run on plans that pass validation (validation checks
    that a plan can run against memory, not that it does the task)."""

    client: ChatClient
    tools: MemoryTools
    experience: Any = None
    _: KW_ONLY
    context_budget: int = 400
    memory_context: bool = True
    examples_k: int = 3
    examples_budget: int = 200
    max_turns: int = 8
    max_plan_attempts: int = 3
    temperature: float = 0.0
    max_tokens: int = 512
    tool_choice: str | dict[str, Any] | None = "auto"
    tool_results: str = "tool"
    goal_check: Callable[[str, Plan], list[str]] | None = None
    system_prompt: str = SYSTEM_PROMPT

    def __post_init__(self) -> None:
        if self.tool_results not in ("tool", "user"):
            raise ValueError(f"tool_results must be 'tool' or 'user', got {self.tool_results!r}")

    # ------------------------------------------------------------------ prompt

    def examples(self, instruction: str) -> str:
        """Few-shot text of similar successful runs ('' without experience)."""
        if self.experience is None:
            return ""
        if hasattr(self.experience, "render_examples"):
            return self.experience.render_examples(instruction, k=self.examples_k, token_budget=self.examples_budget)
        return str(self.experience(instruction))

    def user_prompt(self, instruction: str, holding: str | None = None, feedback: Sequence[str] = ()) -> str:
        parts = [f"Task: {instruction.strip()}", f"Hand: {'holding ' + holding if holding else 'empty'}"]
        if feedback:
            parts.append("Earlier attempt failed during execution:\n" + "\n".join(f"- {f}" for f in feedback))
        if self.memory_context:
            parts.append(self.tools.planner_context(instruction, budget=self.context_budget))
        examples = self.examples(instruction)
        if examples:
            parts.append(examples)
        return "\n\n".join(parts)

    # ------------------------------------------------------------------ tools

    def run_memory_tool(self, name: str, args: dict[str, Any]) -> str:
        """Run one memory tool through the MemoryTools protocol; the JSON text sent back (ValueError on bad args)."""
        tools = self.tools
        if name == "where_is":
            rec = tools.where_is(_label(_text_arg(args, "label")))
            return json.dumps(record_json(rec) if rec else {"found": False})
        if name == "contents":
            recs = tools.contents(_label(_text_arg(args, "receptacle")))
            return json.dumps([record_json(r) for r in recs[:MAX_LIST]])
        if name == "what_changed":
            since = args.get("since_s")
            if isinstance(since, bool) or not isinstance(since, (int, float)):
                raise ValueError("argument 'since_s' must be a number")
            return json.dumps([change_json(c) for c in tools.what_changed(float(since))[:MAX_LIST]])
        if name == "last_seen":
            t = tools.last_seen(_label(_text_arg(args, "label")))
            return json.dumps({"last_seen": None if t is None else round(float(t), 1)})
        if name == "search":
            return json.dumps({"labels": tools.search(_text_arg(args, "text"))})
        if name == "planner_context":
            return tools.planner_context(_text_arg(args, "query"), budget=self.context_budget)
        if name == "likely_places":
            get = getattr(tools, "likely_places", None)
            if not callable(get):
                return json.dumps({"places": [], "note": "no long-term memory to rank places from"})
            places = get(_label(_text_arg(args, "label")), 5)
            return json.dumps({"places": [{**record_json(p.place), "score": round(p.score, 3), "reason": p.reason}
                                          for p in places[:MAX_LIST]]})
        raise ValueError(f"unknown tool {name!r}")

    def to_plan(self, args: dict[str, Any], holding: str | None, instruction: str = "") -> tuple[Plan, list[str]]:
        """The submitted steps as a Plan of memory's records, and its errors (empty: valid)."""
        steps = args.get("steps")
        if not isinstance(steps, list) or not steps:
            return Plan(), ["'steps' must be a non-empty list of {skill, object}"]
        if len(steps) > MAX_STEPS:
            return Plan(), [f"{len(steps)} steps (at most {MAX_STEPS})"]
        plan, errors = Plan(), []
        for k, step in enumerate(steps):
            if not isinstance(step, dict):
                errors.append(f"step {k}: must be an object {{skill, object}}, got {json.dumps(step)[:60]}")
                continue
            skill, name, near = step.get("skill"), step.get("object"), step.get("near")
            if not isinstance(skill, str) or skill not in SKILLS:
                errors.append(f"step {k}: unknown skill {skill!r} (skills: {', '.join(SKILLS)})")
            if not isinstance(name, str) or not _label(name):
                errors.append(f"step {k}: 'object' must be a non-empty string")
                continue
            if near is not None and not (isinstance(near, list) and len(near) in (2, 3)
                                         and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                 for v in near)):
                errors.append(f"step {k}: 'near' must be [x, y]")
                near = None
            rec = self.tools.where_is(_label(name), near=near)
            if rec is None:
                errors.append(f"step {k}: {_label(name)!r} is unknown to memory")
                continue
            if isinstance(skill, str) and skill in SKILLS:
                plan.add(skill, rec)
        errors = errors or validate(plan, self.tools, holding)
        if not errors and self.goal_check is not None:
            errors = list(self.goal_check(instruction, plan))
        return plan, errors

    # ------------------------------------------------------------------ loop

    def plan(self, instruction: str, holding: str | None = None, feedback: Sequence[str] = ()) -> LLMPlanResult:
        """A validated plan for ``instruction`` (``feedback``: why the last plan failed when executed),
        or :class:`PlanRejected`. Transport errors of the client (:class:`~.llm_client.LLMError`) pass through."""
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": self.system_prompt},
            {"role": "user", "content": self.user_prompt(instruction, holding, feedback)},
        ]
        result = LLMPlanResult(transcript=messages)
        for _ in range(self.max_turns):
            reply = self._ask(messages, result)
            calls = reply.tool_calls or calls_in_text(reply.content, prefix=f"t{result.turns}")
            if calls and not reply.tool_calls:  # written as text: keep the dialogue well-formed
                reply = ChatReply(None, calls, reply.finish_reason, reply.prompt_tokens, reply.completion_tokens)
            messages.append(reply.as_message())
            if not calls:
                result.rejected_attempts.append(["no tool call: answer with a tool call, ending with " + SUBMIT])
                messages.append({"role": "user", "content": f"Use the tools. Finish by calling {SUBMIT}."})
            answers = []
            for call in calls:
                result.tool_calls.append(call)
                content, plan = self._answer(call, instruction, holding, result)
                if plan is not None:
                    result.steps = plan.steps
                    return result
                answers.append((call, content))
            if self.tool_results == "user" and answers:
                messages.append({"role": "user", "content": "\n\n".join(f"Result of {c.name}: {text}"
                                                                         for c, text in answers)})
            else:
                messages += [{"role": "tool", "tool_call_id": c.id, "name": c.name, "content": text}
                             for c, text in answers]
            if len(result.rejected_attempts) >= self.max_plan_attempts:
                break
        raise PlanRejected(result)

    def _ask(self, messages: list[dict[str, Any]], result: LLMPlanResult) -> ChatReply:
        reply = self.client.chat(messages, tools=TOOLS, tool_choice=self.tool_choice,
                                 temperature=self.temperature, max_tokens=self.max_tokens)
        if result.turns == 0:
            result.first_prompt_tokens = reply.prompt_tokens
        result.turns += 1
        result.prompt_tokens += reply.prompt_tokens
        result.completion_tokens += reply.completion_tokens
        result.usage_reported = result.usage_reported and reply.usage_reported
        return reply

    def _answer(self, call: ToolCall, instruction: str, holding: str | None, result: LLMPlanResult
                ) -> tuple[str, Plan | None]:
        """The tool result for one call, and the plan when it was a valid submission."""
        if call.name not in TOOL_NAMES:
            return self._tool_error(result, f"unknown tool {call.name!r}; tools: {', '.join(TOOL_NAMES)}"), None
        try:
            args = call.parsed_arguments()
        except ValueError as error:
            message = f"ERROR: arguments of {call.name} are not a JSON object ({error})"
            if call.name == SUBMIT:
                result.rejected_attempts.append([message[7:]])
                return f"REJECTED, not executed: {message[7:]}. Submit again.", None
            return self._tool_error(result, message[7:]), None
        if call.name != SUBMIT:
            try:
                return self.run_memory_tool(call.name, args), None
            except ValueError as error:
                return self._tool_error(result, f"{call.name}: {error}"), None
        plan, errors = self.to_plan(args, holding, instruction)
        if not errors:
            return "accepted", plan
        result.rejected_attempts.append(errors)
        listed = "\n".join(f"- {e}" for e in errors)
        return f"REJECTED, not executed. Errors:\n{listed}\nFix them and call {SUBMIT} again.", None

    @staticmethod
    def _tool_error(result: LLMPlanResult, error: str) -> str:
        result.tool_errors.append(error)
        return f"ERROR: {error}"
