#!/usr/bin/env bash
# End-to-end tests of the console: Debian's Chromium, driven by playwright-core, against a real
# `flowscope standalone --demo`. Screenshots go to web/e2e/artifacts/. Without chromium or node
# they skip, unless FLOWSCOPE_REQUIRE_SERVICES=1 (CI), which makes them fail.
set -euo pipefail
cd "$(dirname "$0")/../.."
missing=""
for c in node npm /usr/bin/chromium; do command -v "$c" >/dev/null || missing="$missing $c"; done
if [ -n "$missing" ]; then
  if [ "${FLOWSCOPE_REQUIRE_SERVICES:-}" = 1 ] || [ "${CI:-}" = true ]; then
    echo "console e2e: missing$missing" >&2; exit 1
  fi
  echo "console e2e: skipped (missing$missing)"; exit 0
fi
[ -d web/node_modules/playwright-core ] || (cd web && npm ci --no-audit --no-fund --loglevel=error)
bin=$(mktemp -d)/flowscope
go build -o "$bin" ./cmd/flowscope
FLOWSCOPE_BIN="$bin" node --test --test-concurrency=1 web/e2e/
rm -f "$bin"
