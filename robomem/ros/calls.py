"""Calling another node's services from a program's own client node.

A node that serves while it calls (the planner node runs an action while it asks memory and the robot)
must not spin its own node from inside a callback; it gives its clients a separate node with a
private executor instead. :class:`ServiceCaller` waits on that executor (or, without one, on rclpy's
global executor, for plain scripts)."""

from __future__ import annotations

import time
from typing import Any

import rclpy
from rclpy.client import Client
from rclpy.executors import Executor
from rclpy.node import Node

ATTEMPT_S = 5.0  # a repeatable call unanswered this long is sent again (see ServiceCaller.call)


class ServiceError(RuntimeError):
    """A service answered with an error, or did not answer in time."""


class ServiceCaller:
    """Synchronous service calls from ``node``, spun by ``executor`` (None: rclpy's global executor)."""

    def __init__(self, node: Node, executor: Executor | None = None, timeout_s: float = 10.0) -> None:
        self.node = node
        self.executor = executor
        self.timeout_s = timeout_s
        if executor is not None:
            executor.add_node(node)

    def spin_until(self, future: Any, timeout_s: float) -> None:
        if self.executor is None:
            rclpy.spin_until_future_complete(self.node, future, timeout_sec=timeout_s)
        else:
            self.executor.spin_until_future_complete(future, timeout_sec=timeout_s)

    def spin_once(self, timeout_s: float) -> None:
        if self.executor is None:
            rclpy.spin_once(self.node, timeout_sec=timeout_s)
        else:
            self.executor.spin_once(timeout_sec=timeout_s)

    def wait_for(self, clients: dict[str, Client], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        for name, client in clients.items():
            if not client.wait_for_service(timeout_sec=max(0.1, deadline - time.monotonic())):
                raise ServiceError(f"{what} service {name} did not appear within {timeout_s} s")

    def call(self, client: Client, name: str, request: Any, repeatable: bool = True,
             timeout_s: float | None = None) -> Any:
        """The response of ``client`` to ``request``. A repeatable call (a query) unanswered within
        ATTEMPT_S is sent again until the timeout: Fast DDS can drop the response to a client whose
        response reader the server has not discovered yet ("failed to send response"). Calls with
        side effects (a robot skill, recording an episode) are never repeated. A response with a
        non-empty ``error`` field raises :class:`ServiceError`."""
        limit = self.timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + limit
        while True:
            future = client.call_async(request)
            remaining = max(0.0, deadline - time.monotonic())
            self.spin_until(future, min(ATTEMPT_S, remaining) if repeatable else remaining)
            if future.done() or not repeatable or time.monotonic() >= deadline:
                break
        if not future.done():
            client.remove_pending_request(future)
            raise ServiceError(f"service {name} did not answer within {limit} s")
        response = future.result()
        if getattr(response, "error", ""):
            raise ServiceError(f"{name}: {response.error}")
        return response
