"""``robomem record``, ``replay``, ``view`` and ``foxglove`` (registered by robomem.cli). Parsing imports
nothing heavy; each command imports what it needs when it runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def cmd_record(args: argparse.Namespace) -> int:
    from robomem.record.recorder import main

    params = [f"bag_path:={args.bag.resolve()}"]
    if args.topics:
        params.append(f"topics:=[{args.topics}]")
    if args.camera_topics is not None:
        params.append(f"camera_topics:=[{args.camera_topics or repr('')}]")
    ros_args = ["--ros-args", "-r", f"__node:={args.name}"]
    for param in params:
        ros_args += ["-p", param]
    return main(["robomem-record", *ros_args])


def cmd_replay(args: argparse.Namespace) -> int:
    from robomem.core import MemoryConfig
    from robomem.record.bag import BagError
    from robomem.record.replay import replay, summary

    config = MemoryConfig.from_yaml(args.config) if args.config else None
    try:
        report = replay(args.bag, args.db, rate=None if args.fast else args.rate, topic=args.topic, config=config,
                        map_frame=args.map_frame, append=args.append)
    except (BagError, FileExistsError) as error:
        print(f"robomem replay: {error}", file=sys.stderr)
        return 2
    print(summary(report))
    return 0


def cmd_view(args: argparse.Namespace) -> int:
    from robomem.core import MemoryConfig
    from robomem.view.page import write_view

    try:
        config = MemoryConfig.from_yaml(args.config) if args.config else None
        written = write_view(args.db, args.out, focus=args.object, png=not args.no_png, config=config)
    except (FileNotFoundError, ValueError) as error:
        print(f"robomem view: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


def cmd_foxglove(args: argparse.Namespace) -> int:
    from robomem.core import MemoryConfig
    from robomem.view.foxglove import serve_file

    config = MemoryConfig.from_yaml(args.config) if args.config else None
    try:
        return serve_file(args.db, host=args.host, port=args.port, period_s=args.period, config=config)
    except (FileNotFoundError, ValueError) as error:
        print(f"robomem foxglove: {error}", file=sys.stderr)
        return 2


def add_record_commands(sub: Any) -> None:
    """Register record, replay, view and foxglove on robomem's subparsers."""
    record = sub.add_parser("record", help="record observation, event and camera topics to a rosbag2 MCAP bag")
    record.add_argument("bag", type=Path, help="bag folder to create (must not exist)")
    record.add_argument("--topics", help="robomem topics, comma-separated (default: observations,events)")
    record.add_argument("--camera-topics", help="camera topics recorded when they appear, comma-separated "
                        "(default: depth/image,depth/camera_info,camera_pose,instance_mask,detections,rgb/image,...;"
                        " '' for none)")
    record.add_argument("--name", default="recorder", help="the recorder node's name")
    record.set_defaults(func=cmd_record)
    replay = sub.add_parser("replay", help="rebuild a memory file from a recorded bag (faster than real time)")
    replay.add_argument("bag", type=Path, help="bag folder (or its .mcap file)")
    replay.add_argument("--db", type=Path, required=True,
                        help="SQLite memory to build (must not exist unless --append)")
    pace = replay.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=_positive, help="play at this multiple of the recorded speed (1 = as recorded)")
    pace.add_argument("--fast", action="store_true", help="as fast as possible (the default)")
    replay.add_argument("--topic", default="/observations", help="the ObservationBatch topic (default: /observations)")
    replay.add_argument("--config", type=Path, help="memory YAML (config/memory.yaml), as the live memory node had")
    replay.add_argument("--map-frame", default="map", help="the live memory node's map_frame")
    replay.add_argument("--append", action="store_true", help="continue the memory already in --db")
    replay.set_defaults(func=cmd_replay)
    view = sub.add_parser("view", help="write a static HTML page (and PNG) of a memory file")
    view.add_argument("db", type=Path, help="SQLite memory file (read only)")
    view.add_argument("--out", type=Path, required=True, help="output folder (index.html, map.png)")
    view.add_argument("--object", help="show this object's history on a timeline (a label, e.g. Mug)")
    view.add_argument("--no-png", action="store_true", help="only the HTML page")
    view.add_argument("--config", type=Path, help="memory YAML with the rooms (config/memory.yaml)")
    view.set_defaults(func=cmd_view)
    fox = sub.add_parser("foxglove", help="serve a memory file live to Foxglove (WebSocket, SceneUpdate)")
    fox.add_argument("--db", type=Path, required=True, help="SQLite memory file (reread while it changes)")
    fox.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    fox.add_argument("--port", type=int, default=8765)
    fox.add_argument("--period", type=_positive, default=1.0, help="seconds between scene updates")
    fox.add_argument("--config", type=Path, help="memory YAML with the rooms (config/memory.yaml)")
    fox.set_defaults(func=cmd_foxglove)
