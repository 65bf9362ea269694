#!/usr/bin/env bash
# Three clustered RabbitMQ nodes and a PostgreSQL 15 primary with a synchronous
# standby, on free ports beside the machine's default broker and database (which it
# never touches); see testing/cluster_backends.py and docs/operations.md.
#   scripts/cluster.sh up       # start them; prints VI_AMQP_URL, VI_DATABASE_URL, ...
#   scripts/cluster.sh status   # running nodes, which PostgreSQL accepts writes
#   scripts/cluster.sh down     # stop everything `up` started and remove its files
# Needs root (PostgreSQL runs as the postgres user). The failover tests start their own.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh >/dev/null
exec .venv/bin/python -m testing.cluster_backends "$@"
