"""Launch robomem's nodes on a robot with a full ROS 2 install (launch, launch_ros):

    ros2 launch robomem robomem.launch.py [params_file:=...] [db_path:=...] [perception:=true] [planner:=true]

Parameters come from config/robomem.yaml (installed to share/robomem/config); relative config_file and
db_path values there are taken relative to that file's folder, as ``robomem ros`` does on machines
without ``ros2 launch``.
"""

from pathlib import Path

import yaml
from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PATH_PARAMETERS = ("config_file", "db_path")


def _absolute_paths(params_file: Path, node: str) -> dict:
    values = (yaml.safe_load(params_file.read_text()) or {}).get(node, {}).get("ros__parameters", {})
    return {
        key: str((params_file.parent / values[key]).resolve())
        for key in PATH_PARAMETERS
        if isinstance(values.get(key), str) and values[key] not in ("", ":memory:")
        and not Path(values[key]).is_absolute()
    }


def _nodes(context, *args, **kwargs):
    params_file = Path(LaunchConfiguration("params_file").perform(context))
    memory_overrides = _absolute_paths(params_file, "memory")
    db_path = LaunchConfiguration("db_path").perform(context)
    if db_path:
        memory_overrides["db_path"] = db_path
    return [
        Node(package="robomem", executable="memory_node", name="memory", output="screen",
             parameters=[str(params_file), memory_overrides]),
        Node(package="robomem", executable="perception_node", name="perception", output="screen",
             parameters=[str(params_file), _absolute_paths(params_file, "perception")],
             condition=IfCondition(LaunchConfiguration("perception"))),
        Node(package="robomem", executable="planner_node", name="planner", output="screen",
             parameters=[str(params_file)], condition=IfCondition(LaunchConfiguration("planner"))),
    ]


def generate_launch_description() -> LaunchDescription:
    default_params = str(Path(get_package_share_directory("robomem")) / "config" / "robomem.yaml")
    return LaunchDescription([
        DeclareLaunchArgument("params_file", default_value=default_params, description="ROS 2 parameters file"),
        DeclareLaunchArgument("db_path", default_value="", description="SQLite file (overrides the parameters)"),
        DeclareLaunchArgument("perception", default_value="false", description="also start the perception bridge"),
        DeclareLaunchArgument("planner", default_value="false",
                              description="also start the planner node (needs a robot skill server)"),
        OpaqueFunction(function=_nodes),
    ])
