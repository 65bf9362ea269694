#!/usr/bin/env bash
# The chaos run (see docs/reliability.md): 20,000 meldingen and 10,000 hostile messages
# from several partners through two replicas of every service, while processes are
# SIGKILLed at random and RabbitMQ and PostgreSQL are each restarted once; then every
# answer, notice and database row is checked against a model. 5-10 minutes on a quiet
# 2-core machine.
#   scripts/chaos.sh                     # the full run, on the local RabbitMQ/PostgreSQL
#   scripts/chaos.sh --quick             # 1,000 + 500, about a minute
#   scripts/chaos.sh --private-backends  # own RabbitMQ node + PostgreSQL cluster (root)
#   scripts/chaos.sh --cluster           # full size on 3 clustered RabbitMQ nodes and a
#                                        # PostgreSQL primary + synchronous standby (root):
#                                        # a node SIGKILLed and back, a database failover
# Restarting the shared backends drops every other client of them: run it on an
# otherwise quiet machine, or with --private-backends.
# Figures: chaos/results/<time>.json and a summary on stdout (exit 1 if a check failed).
# Service logs and e-mails: var/chaos/<time>/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/ensure-backends.sh
exec .venv/bin/python -m chaos.run "$@"
