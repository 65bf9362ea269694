#!/usr/bin/env bash
# The test command: lint, type-check, then every test against the local RabbitMQ and
# PostgreSQL. Extra arguments go to pytest (e.g. scripts/test.sh -k outbox).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/ensure-backends.sh
echo "==> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "==> mypy --strict"
.venv/bin/mypy
echo "==> pytest"
exec .venv/bin/pytest "$@"
