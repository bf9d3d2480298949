"""robomem: memory middleware for household robots on ROS 2."""

__version__ = "0.1.0"
