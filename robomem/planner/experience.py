"""A task run as experience memory keeps it (KARMA / RAG-Modulo): instruction, plan, outcome, objects."""

from __future__ import annotations

from robomem.core.experience import MAX_OBJECTS, MAX_PLAN_STEPS, TaskEpisode
from robomem.planner.agent import Outcome


def run_episode(instruction: str, outcome: Outcome, success: bool, failure: str, started: float, finished: float,
                robot_id: str = "robot") -> TaskEpisode:
    """The run as an episode: the plan steps that ran and the objects involved (named ones first)."""
    objects: list[str] = []
    if outcome.intent is not None:
        objects += list(outcome.intent.objects)
        if outcome.intent.receptacle:
            objects.append(outcome.intent.receptacle)
    objects += [step.split("(", 1)[1].rstrip(")") for step in outcome.executed]
    return TaskEpisode(robot_id=robot_id, instruction=instruction, plan=outcome.executed[:MAX_PLAN_STEPS],
                       success=success, failure_reason=failure, objects=list(dict.fromkeys(objects))[:MAX_OBJECTS],
                       started=started, finished=max(finished, started))
