#!/usr/bin/env bash
# Renew the screenshots of the portal in docs/img/ (shown in docs/portal.md): the
# browser end-to-end test takes them with its own headless Chromium as it walks
# through the pages.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/ensure-backends.sh
mkdir -p docs/img
VI_PORTAL_SCREENSHOTS=docs/img .venv/bin/pytest -q tests/browser/test_portal_pages.py \
    -k "see_the_match or refused_melding or invites_a_colleague"
VI_PORTAL_SCREENSHOTS=docs/img .venv/bin/pytest -q tests/browser/test_portal_coordinator_pages.py
ls docs/img/portal-*.png
