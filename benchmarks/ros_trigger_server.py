"""A bare std_srvs/Trigger service server: the baseline the memory node's service round trip is compared to.

Run in its own process by benchmarks/bench_ros.py (``python benchmarks/ros_trigger_server.py --ros-args
-r __node:=<name>``); serves ``~/trigger`` with the same executor as the memory node (rclpy.spin).
"""

from __future__ import annotations

import sys

import rclpy
from rclpy.executors import ExternalShutdownException
from std_srvs.srv import Trigger


def main(args: list[str] | None = None) -> int:
    rclpy.init(args=args)
    node = rclpy.create_node("trigger_server")

    def serve(request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success = True
        response.message = "ok"
        return response

    node.create_service(Trigger, "~/trigger", serve)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
