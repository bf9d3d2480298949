"""`robomem --help`, every subcommand's `--help` and a mistyped option answer without importing the
simulator, ROS, torch or numpy: each command imports what it needs only when it runs."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from robomem.cli import MEMORY_MODES, build_parser

HEAVY = {"pybullet", "rclpy", "torch", "numpy", "scipy", "matplotlib", "networkx", "sentence_transformers",
         "robomem_sim"}
# Runs the CLI in a fresh interpreter, then reports its exit code and every module it had imported.
RUNNER = """
import json, sys
from robomem.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print("MODULES " + json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def _subcommands() -> list[str]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(action.choices)


def _run(*argv: str) -> tuple[int, str, list[str], set[str]]:
    """(exit code, stdout, stderr lines without the report, top-level modules imported)."""
    done = subprocess.run([sys.executable, "-c", RUNNER, *argv], capture_output=True, text=True, timeout=60)
    lines = done.stderr.splitlines()
    report = json.loads(next(line for line in lines if line.startswith("MODULES "))[len("MODULES "):])
    return (report["code"], done.stdout, [line for line in lines if not line.startswith("MODULES ")],
            {name.split(".")[0] for name in report["modules"]})


def test_every_command_has_help() -> None:
    assert {"qa", "demo", "qa-demo", "ros", "instruct", "make-episodes", "score"} <= set(_subcommands())


@pytest.mark.parametrize("command", ["", *_subcommands()])
def test_help_imports_nothing_heavy(command: str) -> None:
    code, out, err, modules = _run(*([command] if command else []), "--help")
    assert code == 0 and out.startswith(f"usage: robomem {command}".rstrip()), (out, err)
    assert not err  # no banner (pybullet prints one when imported)
    assert not modules & HEAVY, sorted(modules & HEAVY)


@pytest.mark.parametrize(("argv", "error"), [
    (("ros", "--nodes", "memroy"),
     "robomem ros: error: argument --nodes: invalid node 'memroy' (choose from memory, perception, planner)"),
    (("ros", "--nodes", "memory,plannr"),
     "robomem ros: error: argument --nodes: invalid node 'plannr' (choose from memory, perception, planner)"),
    (("demo", "--modes", "ful"),
     "robomem demo: error: argument --modes: invalid mode 'ful' (choose from off, short_term, full)"),
    (("demo", "--transport", "dds"),  # argparse's own wording (its quoting differs between versions)
     ("robomem demo: error: argument --transport: invalid choice: ", "dds", "ros", "inprocess", "auto")),
])
def test_a_mistyped_choice_is_one_line_naming_the_choices(argv, error) -> None:
    code, out, err, modules = _run(*argv)
    assert code == 2 and not out
    assert err[0].startswith(f"usage: robomem {argv[0]}")
    if isinstance(error, str):
        assert err[-1] == error
    else:
        assert err[-1].startswith(error[0]) and all(word in err[-1] for word in error[1:])
    assert not any("Traceback" in line for line in err)
    assert not modules & HEAVY


def test_lists_are_normalised_and_default_to_every_mode() -> None:
    parser = build_parser()
    assert parser.parse_args(["ros", "--nodes", " memory, planner,"]).nodes == "memory,planner"
    assert parser.parse_args(["ros"]).nodes == "memory"
    assert parser.parse_args(["demo"]).modes == "off,short_term,full"
    assert parser.parse_args(["demo", "--modes", "full"]).modes == "full"


def test_the_demo_modes_are_the_runners() -> None:
    pytest.importorskip("pybullet")
    from robomem_sim.runner import MODES

    assert MEMORY_MODES == MODES
