#!/usr/bin/env bash
# A local PostgreSQL server for fleet memory (Debian's binaries; as the postgres user when run as root):
#   scripts/postgres.sh start    # prints the URL to pass as --db / db_path (one ?node=<name> per robot)
#   scripts/postgres.sh stop
#   scripts/postgres.sh status
# Data in $ROBOMEM_PG_DIR (default ~/.local/state/robomem/postgres; as root /var/lib/robomem/postgres), port $ROBOMEM_PG_PORT (default 54329),
# listening on 127.0.0.1 only with trust authentication: for development on one machine, not a deployment.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m robomem.core.pg_server "$@"
