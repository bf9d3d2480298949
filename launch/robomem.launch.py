"""Launch robomem's nodes on a robot with a full ROS 2 install (launch, launch_ros):

    ros2 launch robomem robomem.launch.py [namespace:=r2] [use_sim_time:=true] [db_path:=...]
        [params_file:=...] [perception:=true] [planner:=true]

Parameters come from config/robomem.yaml (installed to share/robomem/config), keyed ``/**/<node>`` so they
apply in any namespace. A relative config_file there is taken relative to that file's folder, as
``robomem ros`` does on machines without ``ros2 launch``; db_path '' (the default) puts the memory in
$ROS_HOME/robomem/<namespace>/memory.sqlite, never the install tree. The memory node is a lifecycle
node that activates itself (autostart); pass autostart:=false to leave that to a lifecycle manager.
"""

import os
import tempfile
from pathlib import Path

import yaml
from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

CONFIG_PARAMETERS = ("config_file",)


def _node_values(params_file: Path, node: str, namespace: str) -> dict:
    """What the file gives ``node`` (keys /**, /**/<node>, <node>, /<namespace>/<node>; later ones win)."""
    document = yaml.safe_load(params_file.read_text()) or {}
    values: dict = {}
    for key in ("/**", f"/**/{node}", node, f"{namespace}/{node}" if namespace else f"/{node}"):
        values.update((document.get(key) or {}).get("ros__parameters") or {})
    return values


def _absolute_paths(params_file: Path, node: str, namespace: str) -> dict:
    values = _node_values(params_file, node, namespace)
    return {
        key: str((params_file.parent / values[key]).resolve())
        for key in CONFIG_PARAMETERS
        if isinstance(values.get(key), str) and values[key] and not Path(values[key]).is_absolute()
    }


def _overrides_file(namespace: str, node: str, values: dict) -> str:
    """``values`` in a parameters file keyed by the node's full name: a dict would be keyed /** and lose
    to the /**/<node> key of the main file."""
    handle, path = tempfile.mkstemp(prefix=f"robomem-{node}-", suffix=".yaml")
    with os.fdopen(handle, "w") as out:
        yaml.safe_dump({f"{namespace}/{node}": {"ros__parameters": values}}, out)
    return path


def _nodes(context, *args, **kwargs):
    params_file = Path(LaunchConfiguration("params_file").perform(context))
    namespace = LaunchConfiguration("namespace").perform(context).strip("/")
    namespace = f"/{namespace}" if namespace else ""
    common = {"use_sim_time": LaunchConfiguration("use_sim_time").perform(context).lower() == "true"}
    memory_overrides = {**common, **_absolute_paths(params_file, "memory", namespace)}
    db_path = LaunchConfiguration("db_path").perform(context)
    if db_path:
        memory_overrides["db_path"] = db_path
    autostart = LaunchConfiguration("autostart").perform(context).lower() == "true"
    memory_overrides["autostart"] = autostart
    return [
        Node(package="robomem", executable="memory_node", name="memory", namespace=namespace, output="screen",
             parameters=[str(params_file), _overrides_file(namespace, "memory", memory_overrides)]),
        Node(package="robomem", executable="perception_node", name="perception", namespace=namespace,
             output="screen", parameters=[str(params_file), _overrides_file(namespace, "perception", {
                 **common, **_absolute_paths(params_file, "perception", namespace)})],
             condition=IfCondition(LaunchConfiguration("perception"))),
        Node(package="robomem", executable="planner_node", name="planner", namespace=namespace, output="screen",
             parameters=[str(params_file), _overrides_file(namespace, "planner", common)],
             condition=IfCondition(LaunchConfiguration("planner"))),
    ]


def generate_launch_description() -> LaunchDescription:
    default_params = str(Path(get_package_share_directory("robomem")) / "config" / "robomem.yaml")
    return LaunchDescription([
        DeclareLaunchArgument("namespace", default_value="", description="namespace of every node and topic (r2)"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="follow /clock"),
        DeclareLaunchArgument("db_path", default_value="",
                              description="SQLite file ('' = $ROS_HOME/robomem/<namespace>/memory.sqlite)"),
        DeclareLaunchArgument("params_file", default_value=default_params, description="ROS 2 parameters file"),
        DeclareLaunchArgument("autostart", default_value="true",
                              description="memory node configures and activates itself (false: lifecycle manager)"),
        DeclareLaunchArgument("perception", default_value="false", description="also start the perception bridge"),
        DeclareLaunchArgument("planner", default_value="false",
                              description="also start the planner node (needs a robot skill server)"),
        OpaqueFunction(function=_nodes),
    ])
