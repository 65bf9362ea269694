#!/usr/bin/env bash
# The test command: lint, type-check, then every test against the local RabbitMQ and
# PostgreSQL. Extra arguments go to pytest (e.g. scripts/test.sh -k outbox; -n 0 runs
# the tests in one process).
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
# Parallel workers: most tests wait on the broker and the database, so one process
# leaves the cores idle. Two halve the time; more made the broker's answers time out on
# a loaded two-core machine (README, "Two commands"). Tests that must
# not run side by side share an xdist_group (tests/conftest.py). VI_TEST_WORKERS sets
# another number.
exec .venv/bin/pytest -n "${VI_TEST_WORKERS:-2}" --dist loadgroup "$@"
