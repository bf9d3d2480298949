"""Offline planner (pure Python, no ROS): instruction -> validated plan of skills, using memory only
through the :class:`~robomem.planner.tools.MemoryTools` protocol, exploring when memory does not know."""

from robomem.planner.agent import Agent, Budget, Executor, Outcome, Spent
from robomem.planner.language import Intent, ParseError, name_of, parse, resolve
from robomem.planner.llm import LLMPlanner, LLMPlanResult, Planner, PlanRejected
from robomem.planner.llm_client import ChatClient, LLMError
from robomem.planner.plan import InvalidPlan, Plan, Step, check, validate
from robomem.planner.results import Failure, FailureKind, StepResult
from robomem.planner.tools import (
    ChangeRecord,
    CountingTools,
    InProcessTools,
    MemoryTools,
    ObjectRecord,
    PlaceRecord,
    ShortTermTools,
)

__all__ = [
    "Agent",
    "Budget",
    "ChangeRecord",
    "ChatClient",
    "CountingTools",
    "Executor",
    "Failure",
    "FailureKind",
    "InProcessTools",
    "Intent",
    "InvalidPlan",
    "LLMError",
    "LLMPlanResult",
    "LLMPlanner",
    "MemoryTools",
    "ObjectRecord",
    "Outcome",
    "PlaceRecord",
    "ParseError",
    "Plan",
    "PlanRejected",
    "Planner",
    "ShortTermTools",
    "Spent",
    "Step",
    "StepResult",
    "check",
    "name_of",
    "parse",
    "resolve",
    "validate",
]
