#!/usr/bin/env bash
# Run the whole system locally with the demo region: all four services against the
# local RabbitMQ and PostgreSQL, then a short walk through what partners see.
# Ctrl-C stops everything. Logs: var/log/<service>.log; e-mails: var/mail/*.eml.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/ensure-backends.sh
export VI_MAIL_DIR=${VI_MAIL_DIR:-var/mail}
mkdir -p var/log "$VI_MAIL_DIR"
VI=.venv/bin/verwijsindex
$VI db upgrade --create
$VI region apply region/demo.toml
logins=$($VI demo users)
echo "$logins"

pids=()
cleanup() {
    trap - EXIT INT TERM
    echo "==> stopping services"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM
port=9101
for service in ingest matcher notifier retention; do
    VI_HTTP_PORT=$port .venv/bin/python -m "services.$service" >>"var/log/$service.log" 2>&1 &
    pids+=($!)
    echo "==> $service running (pid $!, log var/log/$service.log, http://127.0.0.1:$port/healthz)"
    port=$((port + 1))
done
sleep 2
$VI demo traffic
example_url=$(awk '$1 == "regenboog" {print $4}' <<<"$logins")
cat <<EOF

The system keeps running; Ctrl-C stops it.

$logins

Be a partner yourself, in another shell (a second run as jt-noord makes a match):
  .venv/bin/python examples/partner_client.py --partner regenboog --url $example_url

The operator command is $VI (try '$VI --help'), or activate the
environment first with 'source .venv/bin/activate' and type 'verwijsindex --help'.
EOF
wait
