#!/usr/bin/env bash
# Create .venv and install the project with its development tools. Idempotent: it
# reinstalls only when pyproject.toml changed since the last run.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
    echo "==> installing the project and its dependencies into .venv"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e '.[dev]'
    rm -f .venv/.installed-*
    touch "$stamp"
fi
# The official AsyncAPI JSON Schemas (npm @asyncapi/specs; no PyPI package ships them),
# against which the tests check the generated asyncapi.yaml offline.
ASYNCAPI_SPECS_VERSION=6.11.1
specs=.venv/asyncapi-specs/node_modules/@asyncapi/specs
if ! grep -qs "\"version\": \"$ASYNCAPI_SPECS_VERSION\"" "$specs/package.json"; then
    echo "==> installing @asyncapi/specs $ASYNCAPI_SPECS_VERSION into .venv/asyncapi-specs"
    npm install --silent --no-audit --no-fund --ignore-scripts \
        --prefix .venv/asyncapi-specs "@asyncapi/specs@$ASYNCAPI_SPECS_VERSION"
fi
