"""Running one node in a process, the ros2/demos way: init, spin, clean shutdown on Ctrl-C/SIGINT."""

from __future__ import annotations

from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node


def run_node(make_node: Callable[[], Node], args: list[str] | None = None, threads: int = 1) -> int:
    """Create the node, spin until shutdown, then ``close()`` it (if it has one) and destroy it.
    ``threads`` > 1: a multi-threaded executor (a node whose callbacks wait on each other, e.g. an
    action's cancel while its goal runs)."""
    rclpy.init(args=args)
    node = None
    try:
        node = make_node()
        executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 else SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if close is not None:
                close()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
