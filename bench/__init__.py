"""The performance benchmark: `python -m bench --help` (or `scripts/bench.sh`).

It builds a throw-away region (its own vhost, database and partner logins), runs the
services as real subprocesses and measures end-to-end throughput against a bare relay,
latency at a fixed load, matcher throughput against a large index, and memory with a
backlog. See bench/README.md and docs/performance.md.
"""
