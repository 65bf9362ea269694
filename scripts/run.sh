#!/usr/bin/env bash
# Run the whole system locally with the demo region: all four services and the web portal against the
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
# The web portal: pages on :8080 (plain http on localhost, so cookies without Secure),
# /healthz /readyz /metrics on the next health port like the other services.
PORTAL_PORT=${VI_PORTAL_PORT:-8080}
portal_url=$(awk '$1 == "portal" {print $4}' <<<"$logins")
VI_PORTAL_AMQP_URL=$portal_url VI_HTTP_PORT=$port VI_PORTAL_PORT=$PORTAL_PORT \
    VI_PORTAL_INSECURE_COOKIES=1 \
    VI_PORTAL_HOST=127.0.0.1 VI_PORTAL_BASE_URL=http://localhost:$PORTAL_PORT \
    .venv/bin/python -m services.portal >>var/log/portal.log 2>&1 &
pids+=($!)
echo "==> portal running (pid $!, log var/log/portal.log, http://localhost:$PORTAL_PORT/, http://127.0.0.1:$port/healthz)"
sleep 2
$VI demo traffic
portal_login=$($VI portal demo-account --partner de-linde --email ib@delinde.example \
    --name "I. de Boer")
coordinator_login=$($VI portal demo-account --municipality 0599 \
    --email matchregie@rotterdam.example --name "M. Regisseur")
example_url=$(awk '$1 == "regenboog" {print $4}' <<<"$logins")
cat <<EOF

The system keeps running; Ctrl-C stops it.

$logins

Be a partner yourself, in another shell (a second run as jt-noord makes a match):
  .venv/bin/python examples/partner_client.py --partner regenboog --url $example_url

Or be the intern begeleider of Basisschool De Linde in the web portal:
  open http://localhost:$PORTAL_PORT/ and log in with
$(sed 's/^/    /' <<<"$portal_login")
  The verification code is the current TOTP code of that secret (an authenticator app,
  or '$VI portal code SECRET'). Then "Nieuwe melding"; see docs/portal.md.

Or be Rotterdam's match coordinator (the demo's youth moved there): log in with
$(sed 's/^/    /' <<<"$coordinator_login")
  "Matches" lists the matches, escalated first, with "Regie toewijzen" and
  "Afgestemd vastleggen"; "Deelname" shows who takes part.

The operator command is $VI (try '$VI --help'), or activate the
environment first with 'source .venv/bin/activate' and type 'verwijsindex --help'.
EOF
wait
