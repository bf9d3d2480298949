#!/usr/bin/env python3
"""Flake check for the tests over real DDS: every ROS test file run N times in a row, each run a fresh
pytest process, on an idle machine and with CPU-heavy processes beside it; prints the failures per file.

    .venv/bin/python scripts/flake_check.py                  # every ROS test file, 10 runs, idle + loaded
    .venv/bin/python scripts/flake_check.py --runs 3 --modes loaded --files tests/test_ros_calls.py

The ROS test files are the ones with a test marked ``ros`` (``pytest --collect-only -m ros``). "loaded"
runs ``--hogs`` busy loops (default: one) beside the tests: ``python -c`` spinning until a time limit
(bounded: never past the check's own worst case), stopped when the mode ends. Each run has a time limit
(``--run-timeout``); a run over it counts as a failure. The figures (per file and mode: runs, failures,
the failing tests, seconds per run, the load average while it ran) go to ``--out`` as JSON, rewritten
after every file; the log of every failing run is kept in
``--logs``. Exit status 1 if any run failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from robomem.ros.bringup import stop_processes

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv" / "bin" / "python"
FAILED = re.compile(r"^(FAILED|ERROR) (\S+)", re.MULTILINE)
SUMMARY = re.compile(r"^=*\s*(\d+ (?:passed|failed|skipped|errors?|deselected)\b.*?) in [\d.]+s", re.MULTILINE)


def ros_test_files() -> list[str]:
    """Test files with at least one test marked ``ros`` (as pytest selects them)."""
    listing = subprocess.run([str(PYTHON), "-m", "pytest", "--collect-only", "-q", "-m", "ros", "-p",
                              "no:cacheprovider"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    files = sorted({line.split("::", 1)[0] for line in listing.stdout.splitlines() if "::" in line})
    if not files:
        raise SystemExit(f"no ROS tests collected:\n{listing.stdout[-2000:]}{listing.stderr[-2000:]}")
    return files


def start_hogs(count: int, limit_s: float) -> list[subprocess.Popen]:
    """``count`` busy loops, each ending by itself after ``limit_s`` or when this process is gone."""
    loop = (f"import os, time\nend = time.monotonic() + {limit_s:.0f}\n"
            f"while time.monotonic() < end and os.getppid() == {os.getpid()}:\n"
            "    for _ in range(100000):\n        pass\n")
    return [subprocess.Popen([sys.executable, "-c", loop]) for _ in range(count)]


def stop_hogs(hogs: list[subprocess.Popen]) -> None:
    stop_processes(hogs, signal.SIGTERM)


def run_once(test_file: str, timeout_s: float, env: dict[str, str]) -> dict:
    """One pytest run of ``test_file``: passed / failed / skipped, the failing tests, seconds, output."""
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as log:
        run = subprocess.Popen([str(PYTHON), "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider", "-n", "0",
                                test_file], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True, env=env,
                               start_new_session=True)  # its own process group: a hung run goes whole
        try:
            code = run.wait(timeout_s)
            note = ""
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)  # pytest and the nodes it started
            code = run.wait(10)
            note = f"\n[flake_check] killed after {timeout_s:g} s"
        log.seek(0)
        output = log.read() + note
    seconds = time.monotonic() - started
    load_1min = os.getloadavg()[0]
    summary = SUMMARY.findall(output)
    failing = sorted({name for _, name in FAILED.findall(output)})
    if code == 0 and summary and "passed" not in summary[-1]:
        outcome = "skipped"  # everything skipped (a missing optional part): not a pass, not a failure
    else:
        outcome = "passed" if code == 0 else "failed"
    return {"outcome": outcome, "seconds": round(seconds, 1), "load_1min": round(load_1min, 2),
            "failing": failing or ([] if code == 0 else [f"{test_file} (exit {code})"]),
            "summary": summary[-1] if summary else "", "output": output}


def write_report(out: Path, report: dict, wall0: float, finished: bool) -> None:
    report["wall_s"] = round(time.monotonic() - wall0, 1)
    report["finished"] = finished
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="runs of each file in a row, per mode (default 10)")
    parser.add_argument("--modes", default="idle,loaded", help="comma list of idle, loaded (default both)")
    parser.add_argument("--hogs", type=int, default=1, help="busy-loop processes beside the tests when loaded")
    parser.add_argument("--files", nargs="*", help="test files (default: every file with a test marked ros)")
    parser.add_argument("--run-timeout", type=float, default=900.0, help="seconds one pytest run may take")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "flake_check.json")
    parser.add_argument("--logs", type=Path, default=Path(tempfile.gettempdir()) / "robomem-flake-check")
    parser.add_argument("--clean-colcon", action="store_true",
                        help="a clean colcon workspace every run (default: one kept under --logs, so runs after "
                             "the first rebuild only what changed; see tests/test_colcon_build.py)")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or any(m not in ("idle", "loaded") for m in modes):
        parser.error("--modes takes idle and/or loaded")
    files = args.files or ros_test_files()
    args.logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if not args.clean_colcon:
        env["ROBOMEM_COLCON_WS"] = str(args.logs / "colcon_ws")
    report = {"check": "flake_check", "runs_per_file": args.runs, "hogs_when_loaded": args.hogs,
              "colcon_workspace": "clean" if args.clean_colcon else "kept (incremental after the first run)",
              "machine": {"platform": platform.platform(), "cores": os.cpu_count()},
              "started": time.strftime("%Y-%m-%d %H:%M:%S"), "files": files, "results": []}
    print(f"flake check: {len(files)} files x {args.runs} runs, modes {', '.join(modes)}", flush=True)
    wall0 = time.monotonic()
    failures = 0
    for mode in modes:
        worst_case = len(files) * args.runs * args.run_timeout + 60.0
        hogs = start_hogs(args.hogs, worst_case) if mode == "loaded" else []
        try:
            for test_file in files:
                runs = []
                for i in range(args.runs):
                    run = run_once(test_file, args.run_timeout, env)
                    if run["outcome"] == "failed":
                        log = args.logs / f"{Path(test_file).stem}-{mode}-{i + 1}.log"
                        log.write_text(run["output"])
                        run["log"] = str(log)
                    del run["output"]
                    runs.append(run)
                    mark = {"passed": ".", "failed": "F", "skipped": "s"}[run["outcome"]]
                    print(f"  {mode:<6} {test_file:<40} run {i + 1:>2}/{args.runs} {mark} {run['seconds']:7.1f} s  "
                          f"{run['summary']}" + (f"  {run['failing']}" if run["outcome"] == "failed" else ""),
                          flush=True)
                failed = [r for r in runs if r["outcome"] == "failed"]
                failures += len(failed)
                seconds = [r["seconds"] for r in runs]
                report["results"].append({
                    "mode": mode, "file": test_file, "runs": len(runs), "failed_runs": len(failed),
                    "skipped_runs": sum(r["outcome"] == "skipped" for r in runs),
                    "failing_tests": sorted({t for r in failed for t in r["failing"]}),
                    "logs": [r["log"] for r in failed], "seconds_mean": round(sum(seconds) / len(seconds), 1),
                    "seconds_max": max(seconds),
                    "load_1min_mean": round(sum(r["load_1min"] for r in runs) / len(runs), 2)})
                write_report(args.out, report, wall0, finished=False)  # a check cut short keeps what it ran
        finally:
            stop_hogs(hogs)
    write_report(args.out, report, wall0, finished=True)
    print(f"\n{'mode':<7} {'file':<40} {'runs':>4} {'failed':>6} {'s/run':>7}  failing tests")
    for r in report["results"]:
        skipped = f" ({r['skipped_runs']} skipped)" if r["skipped_runs"] else ""
        print(f"{r['mode']:<7} {r['file']:<40} {r['runs']:>4} {r['failed_runs']:>6} {r['seconds_mean']:>7.1f}  "
              + (", ".join(r["failing_tests"]) or "-") + skipped)
    print(f"\n{failures} failed runs; {report['wall_s']:.0f} s; report {args.out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
