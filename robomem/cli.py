"""The `robomem` command: qa (the evaluation contract), demo, and the evaluation tools."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from robomem.ros.bringup import NODES  # no ROS: the node names and how they are started

if TYPE_CHECKING:
    from robomem.core import MemoryConfig

# Parsing the command line imports nothing heavy (no numpy, simulator, ROS, torch): every command
# imports what it needs when it runs, so `robomem --help` and a mistyped option answer at once.
MEMORY_MODES = ("off", "short_term", "full")  # the demo's modes (robomem_sim.runner.MODES)


def comma_list(what: str, valid: Sequence[str]) -> Callable[[str], str]:
    """An argparse type for a comma-separated list of ``valid`` names: the list normalised ("a,b"), or
    an error naming the first unknown one and the choices."""
    def parse(text: str) -> str:
        names = [name.strip() for name in text.split(",") if name.strip()]
        for name in names or [text]:
            if name not in valid:
                raise argparse.ArgumentTypeError(f"invalid {what} {name!r} (choose from {', '.join(valid)})")
        return ",".join(names)

    parse.__name__ = what  # argparse names the type in its messages
    return parse


def _config(args: argparse.Namespace) -> MemoryConfig:
    from robomem.core import MemoryConfig

    config = MemoryConfig.from_yaml(args.config) if getattr(args, "config", None) else MemoryConfig()
    config.db_path = getattr(args, "db", None) or ":memory:"
    return config


def cmd_qa(args: argparse.Namespace) -> int:
    from robomem.qa import run_episode

    if args.db and Path(args.db).exists() and not args.append:
        print(f"{args.db} already holds a memory: pass --append to continue it, or choose a new file "
              "(an episode is meant to start from an empty memory)", file=sys.stderr)
        return 2

    run = run_episode(args.episode, args.out, _config(args))
    print(f"{args.episode}: {run.observations} observations, {run.questions} answers -> {args.out}", file=sys.stderr)
    if run.rejected:
        print(f"rejected input: {dict(run.rejected)}", file=sys.stderr)
    return 0


def demo_episodes() -> list[tuple[Path, Path]]:
    """The bundled demo episodes (episode, truth) shipped in robomem/data."""
    data = Path(str(resources.files("robomem") / "data"))
    return [(p, p.with_name(p.name.replace(".jsonl", ".truth.jsonl")))
            for p in sorted(data.glob("*.jsonl")) if not p.name.endswith(".truth.jsonl")]


def cmd_demo(args: argparse.Namespace) -> int:
    from robomem_sim.demo import run

    return run(args)


def cmd_qa_demo(args: argparse.Namespace) -> int:
    from robomem.eval.scoring import format_report, score_files
    from robomem.qa import run_episode

    episodes = demo_episodes()
    if not episodes:
        print("no bundled demo episodes found in robomem/data", file=sys.stderr)
        return 1
    out_dir = Path(args.out or tempfile.mkdtemp(prefix="robomem-demo-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    answers, truths = [], []
    for episode, truth in episodes:
        out = out_dir / episode.name.replace(".jsonl", ".answers.jsonl")
        config = _config(args)
        config.db_path = str(out_dir / episode.name.replace(".jsonl", ".sqlite"))
        Path(config.db_path).unlink(missing_ok=True)
        run = run_episode(episode, out, config)
        print(f"{episode.name}: {run.observations} views, {run.questions} questions answered", file=sys.stderr)
        answers.append(out)
        truths.append(truth)
    report = score_files(answers, truths)
    print(format_report(report))
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    _show_memory(Path(config.db_path))
    print(f"answers, SQLite memories and report.json in {out_dir}")
    return 0


def _show_memory(db_path: Path) -> None:
    """Reopen the last episode's memory from SQLite and show what a planner would be told."""
    from robomem.core import Memory, MemoryConfig
    from robomem.core.render import render_context

    memory = Memory(MemoryConfig(db_path=str(db_path)))
    try:
        print(f"\nReopened {db_path.name}: {len(memory.tracks)} tracks, {memory.count_believed()} objects believed "
              f"present, {memory.events_recorded} change events in its history.")
        moved = [e.label for e in memory.stm.events() if e.change == "moved"]
        query = f"where is the {moved[-1]}" if moved else "what is on the table"
        print(f"Planner context for {query!r} (150-token budget):")
        print(render_context(memory, query, token_budget=150))
    finally:
        memory.close()


def cmd_ros(args: argparse.Namespace) -> int:
    from robomem.core.storage import is_postgres_url
    from robomem.ros.bringup import default_params_file, normalized_namespace, run

    try:
        namespace = normalized_namespace(args.namespace)
    except ValueError as error:
        print(f"robomem ros: {error}", file=sys.stderr)
        return 2
    overrides: dict[str, object] = {"use_sim_time": True} if args.use_sim_time else {}
    if args.no_activate:
        overrides["autostart"] = False
    keep = args.db == ":memory:" or is_postgres_url(args.db or "")
    memory: dict[str, object] = {"db_path": args.db if keep else str(Path(args.db).resolve())} if args.db else {}
    if args.fleet:
        memory["fleet"] = True
    if args.secure:
        from robomem.ros.security import SecurityUnavailable, require_security_support

        try:
            require_security_support()
        except SecurityUnavailable as error:
            print(f"robomem ros: {error}", file=sys.stderr)
            return 2
    return run((args.params or default_params_file()).resolve(), args.nodes.split(","), overrides, namespace,
               memory, args.secure)


def cmd_instruct(args: argparse.Namespace) -> int:
    from robomem.ros.instruct import instruct

    return instruct(args.instruction, args.planner, args.timeout, args.max_skill_calls)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="robomem", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    qa = sub.add_parser("qa", help="answer a memory-QA episode (see the memory-QA spec)")
    qa.add_argument("episode", type=Path)
    qa.add_argument("--out", type=Path, required=True, help="answers, JSON Lines")
    qa.add_argument("--config", type=Path,
                    help="YAML with a 'memory:' section (config/memory.yaml); its db_path is ignored, see --db")
    qa.add_argument("--db", help="SQLite file to keep the memory in (default: in memory only)")
    qa.add_argument("--append", action="store_true", help="continue the memory already in --db")
    qa.set_defaults(func=cmd_qa)
    demo = sub.add_parser("demo", help="household task runs in simulated homes: memory off / short-term / full")
    demo.add_argument("--out", type=Path, help="output folder (default: ./robomem-demo)")
    demo.add_argument("--tasks", type=int, help="run only the first N tasks of the suite")
    demo.add_argument("--modes", type=comma_list("mode", MEMORY_MODES), default=",".join(MEMORY_MODES),
                      help=f"comma-separated memory modes: {', '.join(MEMORY_MODES)}")
    demo.add_argument("--transport", choices=("ros", "inprocess", "auto"), default="auto",
                      help="how full-memory runs reach memory (auto: ros when rclpy is installed)")
    demo.add_argument("--max-skill-calls", type=int, help="budget per task (default: the suite's)")
    demo.add_argument("--max-nav-m", type=float, help="driving budget per task in metres")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--record", action="store_true",
                      help="record each full-memory run's topics to a bag in OUT/bags (ROS transport; robomem replay)")
    demo.add_argument("--suite", choices=("demo", "train", "val", "full"), default="demo",
                      help="demo: the small default suite; train / val: every room index of that RoomR split; "
                           "full: both (the benchmark)")
    demo.add_argument("--workers", type=int, default=0, help="worker processes, one house at a time each "
                      "(default: one per house, at most CPUs + 1; 1: all in this process)")
    demo.add_argument("--no-cache", action="store_true", help="build every house's tasks and morning walk afresh "
                      "(default: reuse them from ~/.cache/robomem/household when the code has not changed)")
    demo.set_defaults(func=cmd_demo)
    qa_demo = sub.add_parser("qa-demo", help="run the bundled memory-QA episodes and score them")
    qa_demo.add_argument("--out", type=Path, help="output folder (default: a temporary one)")
    qa_demo.add_argument("--config", type=Path)
    qa_demo.set_defaults(func=cmd_qa_demo)
    ros = sub.add_parser("ros", help="start the ROS 2 nodes (memory, perception, planner) from config/robomem.yaml")
    ros.add_argument("--params", type=Path, help="ROS 2 parameters file (default: config/robomem.yaml)")
    ros.add_argument("--nodes", type=comma_list("node", tuple(NODES)), default="memory",
                     help=f"comma-separated: {','.join(NODES)}")
    ros.add_argument("--db", help="SQLite file (overrides the parameters file; default: memory.sqlite in "
                     "$ROS_HOME/robomem/<namespace>/, ROS_HOME defaulting to ~/.ros)")
    ros.add_argument("--fleet", action="store_true", help="the memory joins the fleet of memories sharing --db (a "
                     "postgresql:// URL; named by the URL's node=, else the namespace): answers include other robots'")
    ros.add_argument("--namespace", default="", help="ROS namespace of every node and topic (e.g. r2: /r2/memory, "
                     "/r2/observations)")
    ros.add_argument("--use-sim-time", action="store_true", help="the nodes follow /clock (use_sim_time)")
    ros.add_argument("--no-activate", action="store_true",
                     help="leave the lifecycle nodes unconfigured, for a lifecycle manager (default: active)")
    ros.add_argument("--secure", type=Path, metavar="KEYSTORE",
                     help="enforce DDS security, each node in its enclave of KEYSTORE (python -m "
                     "robomem.ros.security KEYSTORE makes one; needs a Fast DDS with the security plugins)")
    ros.set_defaults(func=cmd_ros)
    instruct = sub.add_parser("instruct", help="send an instruction to the planner node, print its progress")
    instruct.add_argument("instruction")
    instruct.add_argument("--planner", default="planner", help="the planner node's name")
    instruct.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the outcome")
    instruct.add_argument("--max-skill-calls", type=int, default=0, help="budget (0: the node's parameter)")
    instruct.set_defaults(func=cmd_instruct)
    from robomem.eval.cli import add_eval_commands
    from robomem.record.cli import add_record_commands

    add_eval_commands(sub)
    add_record_commands(sub)  # record, replay, view, foxglove
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
