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

# promtool and amtool check and test the alert rules and the Alertmanager config. Taken
# from Debian's prometheus and prometheus-alertmanager packages: only the one binary
# of each, into .venv/bin, so no Prometheus or Alertmanager server is installed,
# enabled or started (the packages' own scripts would start one on :9090 / :9093).
debian_tool() {  # debian_tool TOOL PACKAGE
    if command -v "$1" >/dev/null 2>&1 || [ -x ".venv/bin/$1" ]; then
        return 0
    fi
    echo "==> installing $1 (from Debian's $2 package) into .venv/bin"
    local dir
    dir=$(mktemp -d)
    chmod a+rwx "$dir" # apt's download sandbox user writes here
    if ! (cd "$dir" && apt-get download -qq "$2" >/dev/null 2>&1); then
        # A fresh machine may not have the package lists yet.
        [ "$(id -u)" = 0 ] && { apt-get update -qq >/dev/null 2>&1 || true; }
        (cd "$dir" && apt-get download -qq "$2" >/dev/null 2>&1) || true
    fi
    if ls "$dir"/"$2"_*.deb >/dev/null 2>&1 &&
        dpkg-deb --fsys-tarfile "$dir"/"$2"_*.deb | tar -xO "./usr/bin/$1" >".venv/bin/$1.tmp"; then
        chmod +x ".venv/bin/$1.tmp"
        mv ".venv/bin/$1.tmp" ".venv/bin/$1"
    else
        rm -f ".venv/bin/$1.tmp"
        echo "warning: could not get $1 from Debian's $2 package (no apt-get, or no" \
            "network?): install $1 yourself; the alert tests fail without it" >&2
    fi
    rm -rf "$dir"
}
debian_tool promtool prometheus
debian_tool amtool prometheus-alertmanager

# The official AsyncAPI JSON Schemas (npm @asyncapi/specs; no PyPI package ships them),
# against which the tests check the generated asyncapi.yaml offline.
ASYNCAPI_SPECS_VERSION=6.11.1
specs=.venv/asyncapi-specs/node_modules/@asyncapi/specs
if ! grep -qs "\"version\": \"$ASYNCAPI_SPECS_VERSION\"" "$specs/package.json"; then
    echo "==> installing @asyncapi/specs $ASYNCAPI_SPECS_VERSION into .venv/asyncapi-specs"
    npm install --silent --no-audit --no-fund --ignore-scripts \
        --prefix .venv/asyncapi-specs "@asyncapi/specs@$ASYNCAPI_SPECS_VERSION"
fi

# Chromium for the portal's browser tests: Debian's package, which Playwright drives
# through executable_path (nothing here or in the tests downloads a browser).
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        echo "==> installing Debian's chromium for the browser tests"
        export DEBIAN_FRONTEND=noninteractive
        if ! apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; then
            # A fresh machine may not have the package lists yet.
            apt-get update -qq >/dev/null 2>&1 || true
            apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 || true
        fi
    fi
    command -v chromium >/dev/null 2>&1 ||
        echo "warning: no chromium (install Debian's chromium package as root):" \
            "the browser tests fail without it" >&2
fi

# axe-core (npm), the accessibility rules the browser tests inject into each page.
AXE_CORE_VERSION=4.14.1
axe=.venv/axe-core/node_modules/axe-core
if ! grep -qs "\"version\": \"$AXE_CORE_VERSION\"" "$axe/package.json"; then
    echo "==> installing axe-core $AXE_CORE_VERSION into .venv/axe-core"
    npm install --silent --no-audit --no-fund --ignore-scripts \
        --prefix .venv/axe-core "axe-core@$AXE_CORE_VERSION"
fi
