"""A throwaway local PostgreSQL server (Debian's binaries) for tests, benchmarks and ``scripts/postgres.sh``.

``initdb`` refuses to run as root: then the server runs as the ``postgres`` user (created by Debian's
package) through ``runuser``, in a directory it owns. It listens on 127.0.0.1 only, with trust
authentication for the one superuser ``robomem``: a local development server, not a deployment.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SUPERUSER = "robomem"


def find_bin_dir() -> Path | None:
    """The newest installed PostgreSQL's bin directory (``$ROBOMEM_PG_BIN`` first), or None."""
    candidates = [os.environ.get("ROBOMEM_PG_BIN", "")] + sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").is_file() and (Path(candidate) / "pg_ctl").is_file():
            return Path(candidate)
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path and shutil.which("pg_ctl") else None


def missing_reason() -> str | None:
    """Why a local server cannot be started here (None when it can)."""
    if find_bin_dir() is None:
        return "PostgreSQL server binaries not found (apt-get install postgresql, or set $ROBOMEM_PG_BIN)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: initdb refuses root"
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and no 'postgres' user to run the server as (initdb refuses root)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalPostgres:
    """initdb + pg_ctl start/stop of a server in ``directory`` (a new temporary one by default)."""

    def __init__(self, directory: str | Path | None = None, port: int | None = None, fsync: bool = True) -> None:
        reason = missing_reason()
        if reason:
            raise RuntimeError(reason)
        self.bin = find_bin_dir()
        self._own_dir = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="robomem-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        self.port = port or free_port()
        self.fsync = fsync
        self._as_postgres = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str, **params: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}" + (f"?{query}" if query else "")

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.bin / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=120)

    def init(self) -> LocalPostgres:
        if not (self.data / "PG_VERSION").is_file():
            if self._as_postgres:
                shutil.chown(self.directory, "postgres")
            self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", SUPERUSER, "-E", "UTF8", "--no-sync")
        return self

    def start(self) -> LocalPostgres:
        """Start (after initdb if needed) and wait until it accepts connections."""
        self.init()
        options = f"-h 127.0.0.1 -p {self.port} -k {self.directory} -c max_connections=200"
        if not self.fsync:
            options += " -F"
        result = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60",
                           "start", check=False)
        if result.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {result.stdout}{result.stderr}\n{log}")
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``immediate``: as a crash would, no checkpoint)."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def destroy(self) -> None:
        self.stop("immediate")
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.destroy()


def main(argv: list[str] | None = None) -> int:
    """``python -m robomem.core.pg_server start|stop|status [--dir D] [--port P]`` (see scripts/postgres.sh)."""
    import argparse

    parser = argparse.ArgumentParser(prog="scripts/postgres.sh", description="a local PostgreSQL server for robomem")
    parser.add_argument("action", choices=["start", "stop", "status"])
    home = Path("/var/lib/robomem") if os.geteuid() == 0 else Path.home() / ".local" / "state" / "robomem"
    default_dir = Path(os.environ.get("ROBOMEM_PG_DIR") or home / "postgres")  # root: a path postgres can reach
    parser.add_argument("--dir", type=Path, default=default_dir, help=f"data directory (default {default_dir})")
    parser.add_argument("--port", type=int, default=int(os.environ.get("ROBOMEM_PG_PORT", "54329")))
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    server = LocalPostgres(args.dir, args.port)
    running = (server.data / "postmaster.pid").exists()
    if args.action == "start":
        if not running:
            server.start()
        print(server.url_for("postgres", node="robot1"))
    elif args.action == "stop":
        server.stop()
        print(f"stopped the server in {args.dir}")
    else:
        print(server.url_for("postgres") if running else f"not running ({args.dir})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
