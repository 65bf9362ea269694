#!/usr/bin/env bash
# Start the local PostgreSQL and RabbitMQ if they are down, and enable the RabbitMQ
# management API (used by the operator CLI, the demo and the tests).
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
rabbit_up() { rabbitmqctl -q status >/dev/null 2>&1; }
wait_for() {  # wait_for NAME CHECK
    for _ in $(seq 1 60); do "$2" && return 0; sleep 1; done
    echo "$1 did not come up within 60 s" >&2
    return 1
}

if ! pg_up; then
    echo "==> starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    wait_for PostgreSQL pg_up
fi
if ! rabbit_up; then
    echo "==> starting RabbitMQ"
    rabbitmq-server -detached || true
    wait_for RabbitMQ rabbit_up
fi
if ! rabbitmq-plugins is_enabled rabbitmq_management >/dev/null 2>&1; then
    echo "==> enabling the RabbitMQ management and Prometheus plugins"
    rabbitmq-plugins enable rabbitmq_management rabbitmq_prometheus >/dev/null
fi
mgmt_up() { curl -fsS -u guest:guest http://127.0.0.1:15672/api/overview >/dev/null 2>&1; }
wait_for "RabbitMQ management API" mgmt_up
