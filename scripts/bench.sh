#!/usr/bin/env bash
# The performance benchmark (see bench/README.md): throughput against a bare relay,
# latency at 100 meldingen/s, matcher scaling with the index size, memory with a
# backlog, and the lanes (a 100,000-melding onboarding load or flood beside a live
# partner). Run it on an otherwise quiet machine; it takes 20-30 minutes at full size
# without the lanes parts (each adds a few minutes per 100,000 meldingen).
#   scripts/bench.sh                 # everything, full size
#   scripts/bench.sh --quick         # a smoke run (< 2 minutes)
#   scripts/bench.sh --skip memory --replicas matcher=3
# Figures: bench/results/<timestamp>.json and a table on stdout. Service logs: var/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/ensure-backends.sh
exec .venv/bin/python -m bench "$@"
