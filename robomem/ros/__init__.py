"""Thin rclpy nodes around the memory core: message <-> core conversions, nothing clever.

Importing this package needs ROS 2 (rclpy) and robomem's generated interfaces (scripts/setup.sh).
"""
