"""Service calls that survive a lost answer: the client side (:class:`ServiceCaller`) and the server side
that makes sending a request again safe (:class:`AnsweredRequests`).

Why answers get lost. Fast DDS (rmw_fastrtps) sends a response only to a client whose response reader
the server's response writer has matched; it waits for that match at most the writer's
``max_blocking_time`` (100 ms) and otherwise drops the answer ("failed to send response ...: client will
not receive response"). Under load discovery takes longer than that, so a new client can lose its first
answers although the server got the request (and, for a skill, ran it).

What a client can see. rclpy 9 (Kilted) offers ``Client.service_is_ready()`` (rmw_fastrtps: the graph
has a request reader on ``rq/<service>Request`` and a response writer on ``rr/<service>Reply``, and this
client's request writer and response reader have matched them) and ``Node.count_services`` /
``count_clients`` (the graph only). Nothing reports what the *server* has matched. So:

* :meth:`ServiceCaller.call` waits until ``service_is_ready()`` (the request would be lost otherwise),
  sends, and sends again when no answer came within ``resend_after_s`` (doubling up to
  :data:`MAX_RESEND_S`) until its timeout; whichever attempt is answered first is the answer. An answer
  proves the server has matched this client's reader; from then on answers arrive.
* Only a request that is safe to repeat is sent again: an idempotent one (a query), or one that
  carries a ``request_id`` the server deduplicates (robomem's requests that change state, ExecuteSkill
  and RecordEpisode, have that field; the caller fills it in). Any other request is sent once.
* Every request sent again is counted in :attr:`ServiceCaller.resends` (by service name).
* :meth:`ServiceCaller.handshake` waits until a server has matched every endpoint this process created
  before the call (e.g. a subscription to a topic the server publishes): a participant announces its
  readers in the order it creates them and the server matches them in that order, so an answer to a
  client created now comes after the server has matched the earlier ones.

A node that serves while it calls (the planner node runs an action while it asks memory and the robot)
must not spin its own node from inside a callback; it gives its clients a separate node with a private
executor instead. :class:`ServiceCaller` spins that executor (or, without one, rclpy's global executor,
for plain scripts and tests).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import rclpy
from rclpy.client import Client
from rclpy.executors import Executor
from rclpy.node import Node

RESEND_AFTER_S = 1.0  # a request unanswered this long is sent again (if it may be) ...
MAX_RESEND_S = 5.0  # ... and again, waiting twice as long each time, at most this long
POLL_S = 0.02  # how often readiness is checked while spinning
REMEMBERED_ANSWERS = 256  # a server keeps the answers to this many request ids (AnsweredRequests)


class ServiceError(RuntimeError):
    """A service answered with an error, or did not answer in time."""


class ServiceTimeout(ServiceError, TimeoutError):
    """A service did not appear, or did not answer, in time."""


def resendable(request: Any, idempotent: bool) -> bool:
    """May ``request`` be sent again? Yes if it is idempotent, or carries a non-zero ``request_id``
    (the server answers a repeat with its first answer)."""
    return idempotent or bool(getattr(request, "request_id", 0))


def is_error(response: Any) -> bool:
    """Whether an answer reports an error: robomem's memory services carry ``status`` (STATUS_OK = 0 and
    STATUS_NOT_FOUND = 1 are answers; every other code an error), older ones a non-empty ``error``."""
    status = getattr(response, "status", None)
    if isinstance(status, int):
        return status not in (0, 1)
    return bool(getattr(response, "error", ""))


def response_error(response: Any) -> str:
    """An error answer in words: ``<reason>: <message> (status N)``."""
    if isinstance(getattr(response, "status", None), int):
        return f"{response.reason or 'error'}: {response.message} (status {response.status})"
    return str(getattr(response, "error", ""))


class PendingCall:
    """One request on its way: :meth:`poll` sends it (once the service is ready), sends it again when it
    is due, and returns the answer once one of the attempts is answered. See :class:`ServiceCaller`."""

    def __init__(self, caller: ServiceCaller, client: Client, name: str, request: Any, resend: bool,
                 timeout_s: float, resend_after_s: float) -> None:
        self.caller, self.client, self.name, self.request = caller, client, name, request
        self.resend = resend
        self.timeout_s = timeout_s
        self.started = time.monotonic()
        self.deadline = self.started + timeout_s
        self.interval = resend_after_s
        self.due = self.started  # when the next attempt goes out
        self.attempts: list[Any] = []
        self.response: Any = None

    @property
    def done(self) -> bool:
        return self.response is not None

    def poll(self) -> Any:
        """The answer, or None while there is none (sends or sends again when due)."""
        if self.response is not None:
            return self.response
        for future in self.attempts:
            if future.done() and future.result() is not None:
                self.response = future.result()
                self._forget()
                return self.response
        now = time.monotonic()
        if now >= self.due and (not self.attempts or self.resend) and now < self.deadline:
            if self.client.service_is_ready():
                if self.attempts:
                    self.caller.resends[self.name] += 1
                self.attempts.append(self.client.call_async(self.request))
                self.due = now + self.interval
                self.interval = min(2.0 * self.interval, MAX_RESEND_S)
            else:  # not (or no longer) matched: a request now would be lost
                self.due = now + POLL_S
        return None

    def wait_s(self) -> float:
        """How long the caller may spin before the next :meth:`poll` is needed."""
        now = time.monotonic()
        until = self.deadline if not self.resend and self.attempts else min(self.due, self.deadline)
        return max(0.0, min(until - now, 0.1))

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    def fail(self) -> ServiceTimeout:
        """Give up: forget the attempts (a late answer is dropped) and say why."""
        self._forget()
        if not self.attempts:
            return ServiceTimeout(f"service {self.name} did not appear within {self.timeout_s:g} s")
        sent = f" (sent {len(self.attempts)} times)" if len(self.attempts) > 1 else ""
        return ServiceTimeout(f"service {self.name} did not answer within {self.timeout_s:g} s{sent}")

    def _forget(self) -> None:
        for future in self.attempts:
            if not future.done():
                self.client.remove_pending_request(future)


class ServiceCaller:
    """Synchronous service calls from ``node``, spun by ``executor`` (None: rclpy's global executor). Keep
    one per node and ask it for the clients (:meth:`client`): a kept client has been matched by its
    server, while a new one may lose its first answers. ``resends``: requests sent again, by service."""

    def __init__(self, node: Node, executor: Executor | None = None, timeout_s: float = 10.0) -> None:
        self.node = node
        self.executor = executor
        self.timeout_s = timeout_s
        self.clients: dict[str, Client] = {}
        self.resends: Counter[str] = Counter()
        self._next_id = secrets.randbits(48) << 12  # request ids unique across processes and restarts
        if executor is not None:
            executor.add_node(node)

    # ------------------------------------------------------------------ clients
    def client(self, service_type: Any, name: str) -> Client:
        """The kept client of service ``name`` (created on first use)."""
        client = self.clients.get(name)
        if client is None:
            client = self.clients[name] = self.node.create_client(service_type, name)
        return client

    def close(self) -> None:
        """Destroy the kept clients."""
        for client in self.clients.values():
            self.node.destroy_client(client)
        self.clients.clear()

    def next_request_id(self) -> int:
        self._next_id += 1
        return self._next_id

    @property
    def resent(self) -> int:
        """Requests sent again so far, over all services."""
        return sum(self.resends.values())

    # ------------------------------------------------------------------ spinning
    def spin_once(self, timeout_s: float) -> None:
        if self.executor is None:
            rclpy.spin_once(self.node, timeout_sec=timeout_s)
        else:
            self.executor.spin_once(timeout_sec=timeout_s)

    def spin_until(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        """Spin until ``condition()`` holds (True) or ``timeout_s`` passes (False)."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return bool(condition())
            self.spin_once(min(POLL_S, remaining))
        return True

    def wait_until_ready(self, clients: Iterable[Client] | None = None, timeout_s: float | None = None,
                         what: str = "") -> None:
        """Wait until every client (default: the kept ones) has matched its server (``service_is_ready``)."""
        limit = self.timeout_s if timeout_s is None else timeout_s
        waiting = list(self.clients.values() if clients is None else clients)
        if not self.spin_until(lambda: all(c.service_is_ready() for c in waiting), limit):
            missing = ", ".join(c.srv_name for c in waiting if not c.service_is_ready())
            raise ServiceTimeout(f"{what + ' ' if what else ''}service {missing} did not appear within {limit:g} s")

    # ------------------------------------------------------------------ calls
    def start(self, client: Client, request: Any, *, idempotent: bool | None = None, name: str | None = None,
              timeout_s: float | None = None, resend_after_s: float = RESEND_AFTER_S) -> PendingCall:
        """Send ``request`` without waiting (poll the returned :class:`PendingCall` while spinning).
        ``idempotent``: may the request be repeated? None: robomem's convention, a request with a
        ``request_id`` field changes state (it is then filled in, so repeats are answered, not run
        again), any other is a query."""
        if idempotent is None:
            idempotent = not hasattr(request, "request_id")
        if not idempotent and hasattr(request, "request_id") and not request.request_id:
            request.request_id = self.next_request_id()
        limit = self.timeout_s if timeout_s is None else timeout_s
        pending = PendingCall(self, client, name or client.srv_name, request, resendable(request, idempotent),
                              limit, resend_after_s)
        pending.poll()
        return pending

    def call(self, client: Client, request: Any, *, idempotent: bool | None = None, name: str | None = None,
             timeout_s: float | None = None, resend_after_s: float = RESEND_AFTER_S,
             raise_on_error: bool = True) -> Any:
        """The response of ``client``'s server to ``request`` (see the module docstring for when it is
        sent again). Raises :class:`ServiceTimeout` when no answer came within ``timeout_s`` and, with
        ``raise_on_error``, :class:`ServiceError` for a response whose ``status`` is an error (see
        :func:`is_error`)."""
        pending = self.start(client, request, idempotent=idempotent, name=name, timeout_s=timeout_s,
                             resend_after_s=resend_after_s)
        while pending.poll() is None:
            if pending.expired():
                raise pending.fail()
            self.spin_once(pending.wait_s())
        response = pending.response
        if raise_on_error and is_error(response):
            raise ServiceError(f"{pending.name}: {response_error(response)}")
        return response

    def handshake(self, service_type: Any, name: str, timeout_s: float | None = None) -> None:
        """Return once the server of ``name`` (an idempotent service, called with a default request) has
        answered a client created now: it has then matched every endpoint this process created before,
        e.g. a subscription to a topic it publishes (see the module docstring)."""
        probe = self.node.create_client(service_type, name)
        try:
            self.call(probe, service_type.Request(), idempotent=True, name=name, timeout_s=timeout_s,
                      raise_on_error=False)
        finally:
            self.node.destroy_client(probe)


class AnsweredRequests:
    """The server side of sending a request again: the first answer to each of the last ``size``
    request ids, given again for a repeat, so a request that changes state takes effect once. A repeat
    that arrives while the first is still being served (a multi-threaded executor) waits for its answer.
    Requests without an id (``request_id`` 0) are always served."""

    def __init__(self, size: int = REMEMBERED_ANSWERS) -> None:
        self.size = size
        self._answers: OrderedDict[int, Any] = OrderedDict()
        self._serving: dict[int, threading.Event] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._answers)

    def serve(self, handler: Callable[[Any, Any], Any], on_repeat: Callable[[], None] = lambda: None
              ) -> Callable[[Any, Any], Any]:
        """A service callback: ``handler(request, response)`` once per request id, the kept answer for
        a repeat (``on_repeat()`` is called for each)."""

        def callback(request: Any, response: Any) -> Any:
            request_id = int(getattr(request, "request_id", 0))
            if not request_id:
                return handler(request, response)
            while True:
                with self._lock:
                    if request_id in self._answers:
                        self._answers.move_to_end(request_id)
                        answer = self._answers[request_id]
                        break
                    serving = self._serving.get(request_id)
                    if serving is None:
                        self._serving[request_id] = threading.Event()
                        answer = None
                        break
                serving.wait()
            if answer is not None:
                on_repeat()
                return answer
            try:
                answer = handler(request, response)
                with self._lock:
                    self._answers[request_id] = answer
                    while len(self._answers) > self.size:
                        self._answers.popitem(last=False)
            finally:
                with self._lock:
                    self._serving.pop(request_id).set()
            return answer

        return callback
